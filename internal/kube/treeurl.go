package kube

import (
	"crypto/hmac"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// TreeURLLifetime is how long a tree URL works: long enough for a pod to be
// scheduled, pull its images and start its checkout, short enough that a
// leaked URL soon stops opening the code. A pod started after it (a
// rescheduled replica) fails its checkout until the next deploy.
const TreeURLLifetime = time.Hour

// TreePath is glenv's route for tree tarballs.
const TreePath = "/kube/tree/"

// MAC signs data for a purpose (secret.Box.MAC).
type MAC func(purpose, data string) string

func treeData(integration, sha string, exp int64) string {
	return integration + "/" + sha + "/" + strconv.FormatInt(exp, 10)
}

// SignTreeURL is the URL the checkout container downloads sha's tree from:
// the signature covers the integration, the SHA and the expiry, so it opens
// that one tree until then and nothing else.
func SignTreeURL(mac MAC, publicURL, integration, sha string, exp time.Time) string {
	e := exp.Unix()
	q := url.Values{"exp": {strconv.FormatInt(e, 10)}, "sig": {mac("tree", treeData(integration, sha, e))}}
	return strings.TrimRight(publicURL, "/") + TreePath + url.PathEscape(integration) + "/" + sha + "?" + q.Encode()
}

// Errors of VerifyTreeURL.
var (
	ErrTreeSignature = errors.New("this tree link is not valid (bad signature)")
	ErrTreeExpired   = errors.New("this tree link has expired; deploy the environment again for a fresh one")
)

// VerifyTreeURL checks a tree request's signature and expiry.
func VerifyTreeURL(mac MAC, integration, sha, exp, sig string, now time.Time) error {
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !validSHA(sha) {
		return ErrTreeSignature
	}
	if !hmac.Equal([]byte(sig), []byte(mac("tree", treeData(integration, sha, e)))) {
		return ErrTreeSignature
	}
	if now.Unix() > e {
		return ErrTreeExpired
	}
	return nil
}
