package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"

	"github.com/glenv/glenv/internal/gitsha"
)

// A push's commit is fetched in glenv's own process, over Git's smart HTTP
// protocol version 2 (gitprotocol-v2, gitprotocol-http): one stateless POST
// to <repo>.git/git-upload-pack asking for exactly the commit at depth 1.
// `git fetch` made the same exchange from three processes (fetch,
// remote-https, unpack-objects) after a first request listing the server's
// capabilities; together they were half of a redeploy. Protocol v2 is
// served by GitLab since 11.4 (Gitaly passes the Git-Protocol header to
// upload-pack), and the want of a bare SHA is allowed there because Gitaly
// runs upload-pack with uploadpack.allowAnySHA1InWant (gitaly
// internal/git/command_description.go). A server that answers otherwise
// (no v2) is fetched from with git itself, as before.

// errNoProtocolV2 is a server answering the request as no v2 server
// would: the caller fetches with git instead.
var errNoProtocolV2 = errors.New("the server does not speak git protocol v2")

// maxPack bounds what one fetch may write: a depth-1 commit of a
// repository glenv builds, not a mirror of anything a server sends.
const maxPack = 4 << 30

// fetchRequest is the body of the v2 fetch of sha at depth 1: no progress,
// deltas by offset, no thin pack (the cache repository may not hold the
// bases), so the pack holds the commit's whole tree.
func fetchRequest(sha string) []byte {
	var b bytes.Buffer
	for _, l := range []string{"command=fetch\n", "agent=glenv\n"} {
		writePkt(&b, l)
	}
	b.WriteString("0001") // delim-pkt: the arguments follow
	for _, l := range []string{"ofs-delta\n", "no-progress\n", "deepen 1\n", "want " + sha + "\n", "done\n"} {
		writePkt(&b, l)
	}
	b.WriteString("0000")
	return b.Bytes()
}

func writePkt(b *bytes.Buffer, s string) {
	fmt.Fprintf(b, "%04x%s", len(s)+4, s)
}

// pkt kinds besides data.
const (
	pktData = iota
	pktFlush
	pktDelim
)

// readPkt reads one pkt-line: its kind and, for data, its payload. An
// "ERR " line is the server's error message.
func readPkt(r *bufio.Reader) (int, []byte, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n, err := strconv.ParseUint(string(head[:]), 16, 16)
	if err != nil {
		return 0, nil, fmt.Errorf("bad pkt-line length %q", head[:])
	}
	switch {
	case n == 0:
		return pktFlush, nil, nil
	case n == 1:
		return pktDelim, nil, nil
	case n < 4:
		return 0, nil, fmt.Errorf("bad pkt-line length %q", head[:])
	}
	p := make([]byte, n-4)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	if bytes.HasPrefix(p, []byte("ERR ")) {
		return 0, nil, &remoteError{msg: strings.TrimSpace(string(p[4:]))}
	}
	return pktData, p, nil
}

// remoteError is an error upload-pack sent back.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return "the server said: " + e.msg }

// fetchedPack is what the server sent for a fetch: the commits it cut the
// history at (shallow), and the pack's data, read by the caller.
type fetchedPack struct {
	shallow []string
	pack    io.Reader
	body    io.Closer
}

// postFetch sends the fetch of sha to url (the project's .git URL) and
// reads the answer up to its pack. token travels in an Authorization
// header only.
func postFetch(ctx context.Context, client *http.Client, url, token, sha string) (*fetchedPack, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/git-upload-pack", bytes.NewReader(fetchRequest(sha)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Accept", "application/x-git-upload-pack-result")
	req.Header.Set("Git-Protocol", "version=2")
	req.Header.Set("User-Agent", "git/glenv")
	if token != "" {
		// As git sends it: GitLab takes the token as the password of any
		// user name (lib/gitlab/auth.rb).
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("oauth2:"+token)))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s at %s: %w", url, gitsha.Short(sha), err)
	}
	ok := false
	defer func() {
		if !ok {
			resp.Body.Close()
		}
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("fetch %s: GitLab refused the integration's token (401); renew it with `glenv integration:update --token` and check it with `glenv integration:validate`", url)
	case http.StatusForbidden:
		return nil, fmt.Errorf("fetch %s: GitLab forbids reading the code (403); give the token the read_repository or api scope and Reporter access or more", url)
	case http.StatusNotFound:
		return nil, fmt.Errorf("fetch %s: GitLab has no such project, or hides it from the integration's token (404); check the integration's gitlab_project and the token's access", url)
	default:
		return nil, fmt.Errorf("fetch %s at %s: GitLab answered %s", url, gitsha.Short(sha), resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && ct != "application/x-git-upload-pack-result" {
		return nil, fmt.Errorf("fetch %s at %s: GitLab answered %q, not a Git pack; is the integration's base_url GitLab's?", url, gitsha.Short(sha), ct)
	}
	br := bufio.NewReaderSize(io.LimitReader(resp.Body, maxPack), 64<<10)
	fp := &fetchedPack{body: resp.Body}
	// Sections: shallow-info (with deepen), then packfile; acknowledgments
	// and wanted-refs do not come with done and a bare SHA.
	section := ""
	for {
		kind, p, err := readPkt(br)
		if err != nil {
			var re *remoteError
			if errors.As(err, &re) && strings.Contains(re.msg, "not our ref") {
				return nil, fmt.Errorf("fetch %s: commit %s is not in the repository (was it force-pushed away?)", url, gitsha.Short(sha))
			}
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			// Anything else (an ERR line, an empty answer) is a server
			// that did not take the request as v2: git is asked instead,
			// and says what is wrong if it is not that.
			return nil, fmt.Errorf("%w: %v", errNoProtocolV2, err)
		}
		line := strings.TrimSuffix(string(p), "\n")
		switch {
		case kind == pktFlush:
			return nil, fmt.Errorf("%w: it answered without a pack", errNoProtocolV2)
		case kind == pktDelim:
			section = ""
		case section == "" && line == "packfile":
			fp.pack = sideband.NewDemuxer(sideband.Sideband64k, br)
			ok = true
			return fp, nil
		case section == "" && (line == "shallow-info" || line == "acknowledgments" || line == "wanted-refs"):
			section = line
		case section == "shallow-info" && strings.HasPrefix(line, "shallow "):
			fp.shallow = append(fp.shallow, strings.TrimPrefix(line, "shallow "))
		case section != "":
			// unshallow, acks, wanted refs: nothing glenv needs.
		default:
			// A v0 answer (a ref advertisement, NAK, ACK).
			return nil, errNoProtocolV2
		}
	}
}

// fetchClient is the HTTP client of fetches: no proxy from glenv's
// environment (git ran with none either), the deploy's context as the
// only deadline once the server answers.
func fetchClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.ResponseHeaderTimeout = 2 * time.Minute
	return &http.Client{Transport: t}
}
