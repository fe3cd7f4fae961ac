package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkProxy forwards small GETs over keep-alive connections through
// each path; bench/proxy compares them with the app direct and a TCP
// forwarder, each in a process of its own.
func BenchmarkProxy(b *testing.B) {
	body := []byte("hello, glenv\n")
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	defer app.Close()
	for _, tc := range []struct {
		name           string
		disable, front bool
	}{{"front", false, true}, {"lean", false, false}, {"reverseproxy", true, false}} {
		b.Run(tc.name, func(b *testing.B) {
			p := New(Options{EnvDomain: "localhost", DisableLeanPath: tc.disable,
				Backends: backends{"app": strings.TrimPrefix(app.URL, "http://")}})
			var addr string
			if tc.front {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				f := NewFront(p, &http.Server{Handler: p})
				go f.Serve(l)
				defer f.Shutdown(context.Background())
				addr = l.Addr().String()
			} else {
				s := httptest.NewServer(p)
				defer s.Close()
				addr = strings.TrimPrefix(s.URL, "http://")
			}
			req := []byte("GET / HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: bench\r\n\r\n")
			b.ReportAllocs()
			b.SetParallelism(16) // 32 connections on 2 CPUs, as bench/proxy
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				for pb.Next() {
					c.Write(req)
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkAnswerHead reads a typical small answer (a Go app's: Date,
// Content-Type, Content-Length) and its body with the lean answer parser
// and with http.ReadResponse, from the same buffered bytes.
func BenchmarkAnswerHead(b *testing.B) {
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nDate: Sat, 05 Dec 2026 17:00:00 GMT\r\n\r\nhello, glenv\n"
	req := &http.Request{Method: http.MethodGet}
	for _, tc := range []struct {
		name string
		read func(c *upConn) (*http.Response, error)
	}{
		{"lean", func(c *upConn) (*http.Response, error) { return (&Proxy{}).readAnswer(c, req) }},
		{"ReadResponse", func(c *upConn) (*http.Response, error) { return http.ReadResponse(c.br, req) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var src strings.Reader
			c := &upConn{}
			c.br = bufio.NewReaderSize(&src, 4<<10)
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(answer)
				c.br.Reset(&src)
				resp, err := tc.read(c)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := resp.Body.Read(buf); err != nil && err != io.EOF {
					b.Fatal(err)
				}
			}
		})
	}
}
