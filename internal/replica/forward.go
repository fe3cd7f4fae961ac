package replica

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/glenv/glenv/internal/proxy"
	"github.com/glenv/glenv/internal/secret"
	"github.com/glenv/glenv/internal/store"
)

// Relay headers (proxy.ReplicaHeaderPrefix): the client's address, when the
// relaying replica signed, and the signature.
const (
	headerClient = proxy.ReplicaHeaderPrefix + "Client"
	headerAt     = proxy.ReplicaHeaderPrefix + "At"
	headerSig    = proxy.ReplicaHeaderPrefix + "Signature"
	headerFrom   = proxy.ReplicaHeaderPrefix + "From"
)

// relayWindow is how old (or how far ahead, clocks differ) a relay's
// signature may be: a captured request cannot be replayed after it.
const relayWindow = 30 * time.Second

// Relays lets the proxy relay requests between replicas (proxy.Replicas).
// The signature is an HMAC with a key derived from the secret key every
// replica shares (--secret-key-file), over the host, request line, client
// and time, so nobody without that key can pass a request off as relayed
// (and skip the gate of a private environment).
type Relays struct {
	R   *Registry
	Box *secret.Box
	now func() time.Time
}

// Owner is the address of the live replica, other than this one, that
// runs the environment of host label.
func (f *Relays) Owner(ctx context.Context, label string) (string, bool) {
	owner, err := store.EnvironmentOwnerByHost(ctx, f.R.st.Reader(), label)
	if err != nil || owner == 0 || owner == f.R.ID() {
		return "", false
	}
	r, ok := f.R.Live(owner)
	if !ok {
		return "", false // dead: being taken over; the status page says so
	}
	return r.Address, true
}

// Sign marks out as relayed by this replica for clientIP.
func (f *Relays) Sign(out *http.Request, clientIP string) {
	at := strconv.FormatInt(f.clock().Unix(), 10)
	out.Header.Set(headerClient, clientIP)
	out.Header.Set(headerAt, at)
	out.Header.Set(headerFrom, strconv.FormatInt(f.R.ID(), 10))
	out.Header.Set(headerSig, f.mac(out, clientIP, at))
}

// Verify checks a relayed request's mark.
func (f *Relays) Verify(in *http.Request) (string, bool, error) {
	sig := in.Header.Get(headerSig)
	if sig == "" {
		return "", false, nil
	}
	clientIP, at := in.Header.Get(headerClient), in.Header.Get(headerAt)
	return clientIP, true, verify(f.mac(in, clientIP, at), sig, at, f.clock())
}

// verify is the decision: the signature matches and is recent.
func verify(want, got, at string, now time.Time) error {
	if !hmac.Equal([]byte(want), []byte(got)) {
		return errors.New("the relay signature does not verify")
	}
	sec, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return errors.New("the relay time is not a number")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > relayWindow || d < -relayWindow {
		return fmt.Errorf("the relay was signed %s away from now (at most %s)", d.Round(time.Second), relayWindow)
	}
	return nil
}

func (f *Relays) mac(r *http.Request, clientIP, at string) string {
	return f.Box.MAC("replica-relay", r.Host+"\n"+r.Method+"\n"+r.URL.RequestURI()+"\n"+clientIP+"\n"+at)
}

func (f *Relays) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}
