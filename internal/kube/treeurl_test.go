package kube

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func testMAC(purpose, data string) string {
	m := hmac.New(sha256.New, []byte("key"))
	m.Write([]byte(purpose + "\x00" + data))
	return hex.EncodeToString(m.Sum(nil))
}

func TestTreeURL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	signed := SignTreeURL(testMAC, "https://glenv.example.com/", "shop", sha1, now.Add(TreeURLLifetime))
	u, err := url.Parse(signed)
	if err != nil || u.Path != TreePath+"shop/"+sha1 {
		t.Fatalf("signed URL %q", signed)
	}
	exp, sig := u.Query().Get("exp"), u.Query().Get("sig")
	other := strings.Repeat("2", 40)
	tests := []struct {
		name                  string
		integration, sha, exp string
		sig                   string
		at                    time.Time
		want                  error
	}{
		{"a signed URL opens its tree before it expires", "shop", sha1, exp, sig, now, nil},
		{"it stops working after its expiry", "shop", sha1, exp, sig, now.Add(TreeURLLifetime + time.Second), ErrTreeExpired},
		{"the signature does not open another SHA", "shop", other, exp, sig, now, ErrTreeSignature},
		{"nor another integration's tree", "shop2", sha1, exp, sig, now, ErrTreeSignature},
		{"a later expiry needs a new signature", "shop", sha1, "9999999999", sig, now, ErrTreeSignature},
		{"a ref instead of a SHA is refused", "shop", "main", exp, sig, now, ErrTreeSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyTreeURL(testMAC, tt.integration, tt.sha, tt.exp, tt.sig, tt.at); !errors.Is(err, tt.want) {
				t.Fatalf("VerifyTreeURL = %v, want %v", err, tt.want)
			}
		})
	}
}
