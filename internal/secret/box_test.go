package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileIsCreatedOnceWith0600AndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d", "secret.key")
	b1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	sealed := b1.Seal("glpat-secret")
	if strings.Contains(sealed, "glpat-secret") {
		t.Fatal("sealed value contains the plaintext")
	}
	b2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b2.Open(sealed)
	if err != nil || got != "glpat-secret" {
		t.Fatalf("Open after reload = %q, %v", got, err)
	}
}

func TestOpenRejectsOtherKeysAndGarbage(t *testing.T) {
	a, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "a"))
	b, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "b"))
	for name, in := range map[string]string{
		"other key":     a.Seal("x"),
		"no prefix":     "plaintext",
		"bad base64":    "v1:!!!",
		"too short":     "v1:AAAA",
		"tampered byte": a.Seal("x")[:10] + "A" + a.Seal("x")[11:],
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := b.Open(in); err == nil {
				t.Fatalf("Open(%q) succeeded, want error", in)
			}
		})
	}
}

func TestBadKeyFileSaysHowToFix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	os.WriteFile(path, []byte("short"), 0o600)
	_, err := LoadOrCreateKey(path)
	if err == nil || !strings.Contains(err.Error(), "32 random bytes") {
		t.Fatalf("err = %v", err)
	}
}
