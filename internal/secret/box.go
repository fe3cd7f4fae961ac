// Package secret encrypts secrets at rest (GitLab tokens, webhook secrets)
// with AES-256-GCM under a key kept in a 0600 file. It never logs or returns
// key material.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Box seals and opens secrets with one key.
type Box struct {
	aead   cipher.AEAD
	macKey []byte
}

const prefix = "v1:"

// LoadOrCreateKey reads the key file, generating a fresh random key (0600)
// when the file does not exist yet.
func LoadOrCreateKey(path string) (*Box, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create directory for secret key %s: %w", path, err)
		}
		enc := base64.StdEncoding.EncodeToString(key) + "\n"
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create secret key %s: %w", path, err)
		}
		if _, err := f.WriteString(enc); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secret key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		raw = []byte(enc)
	} else if err != nil {
		return nil, fmt.Errorf("read secret key %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("secret key %s: must hold 32 random bytes in base64 (e.g. `head -c32 /dev/urandom | base64`); restore the original file or secrets already stored cannot be read", path)
	}
	return NewBox(key)
}

// NewBox builds a Box from a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// A separate key for MACs, derived so the encryption key is never reused.
	d := hmac.New(sha256.New, key)
	d.Write([]byte("glenv mac key"))
	return &Box{aead: aead, macKey: d.Sum(nil)}, nil
}

// Seal encrypts plaintext into a printable string.
func (b *Box) Seal(plaintext string) string {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("secret: no randomness: " + err.Error())
	}
	ct := b.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return prefix + base64.RawStdEncoding.EncodeToString(ct)
}

// ErrWrongKey means a sealed value was not made with this key.
var ErrWrongKey = errors.New("secret cannot be decrypted: the secret key file differs from the one it was stored with; restore the original --secret-key-file")

// Open decrypts a value made by Seal.
func (b *Box) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if !strings.HasPrefix(sealed, prefix) {
		return "", ErrWrongKey
	}
	ct, err := base64.RawStdEncoding.DecodeString(sealed[len(prefix):])
	if err != nil || len(ct) < b.aead.NonceSize() {
		return "", ErrWrongKey
	}
	pt, err := b.aead.Open(nil, ct[:b.aead.NonceSize()], ct[b.aead.NonceSize():], nil)
	if err != nil {
		return "", ErrWrongKey
	}
	return string(pt), nil
}

// MAC signs data for a purpose (e.g. "log") with a key derived from the
// secret key, for links that must work without an API token.
func (b *Box) MAC(purpose, data string) string {
	m := hmac.New(sha256.New, b.macKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(data))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}
