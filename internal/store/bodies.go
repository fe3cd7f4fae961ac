package store

import (
	"database/sql"
	"fmt"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/s2"
)

// Webhook bodies on SQLite are stored compressed (issue 15). A GitLab push
// is JSON, 8 KB typically: as text it fills two to three 4 KiB pages of
// delivery_bodies, each written twice (to the WAL inside the ack's
// commit, then by the checkpoint), and SQLite's page writes were the
// largest part of an acknowledgement's CPU (a profile of bench/ack's
// closed loop: 17 % in sqlite3OsWrite). S2 (klauspost/compress, Snappy's
// format extended) makes a push with distinct commits about a third of
// its size in ~5 µs, so a body takes one page instead of two or three
// (BenchmarkAcceptWALBytes: 17,074 → 12,575 WAL bytes a delivery); zstd's
// fastest level packed 30 % tighter at five times the CPU, inside the
// ack. PostgreSQL compresses the column itself (TOAST, lz4: migration
// 0030), so its bodies are stored as text.
//
// A compressed body is a BLOB whose first byte is bodyS2, then S2's block
// format; a TEXT value is a body as received (every body stored before
// this, every small one, and every one on PostgreSQL). Readers take both.
const bodyS2 = 0x01

// Bodies shorter than compressMin stay text: a few hundred bytes share a
// page with others anyway.
const compressMin = 1024

// maxStoredBody bounds what a stored body may decode to: the receiver's
// limit (GitLab's, 25 MiB), so a damaged length cannot make a reader
// allocate more.
const maxStoredBody = 25 << 20

// storedBody is what an INSERT into delivery_bodies binds for body on
// dialect d: on SQLite, S2-compressed when that saves an eighth or more.
func storedBody(d Dialect, body string) any {
	if d != SQLite || len(body) < compressMin {
		return body
	}
	// s2.Encode only reads src: the string's bytes are not copied. It
	// encodes into a pooled scratch buffer of MaxEncodedLen; what is kept
	// is a copy of its exact size (a fresh MaxEncodedLen buffer a body was
	// half of storedBody's CPU, zeroing it).
	src := unsafe.Slice(unsafe.StringData(body), len(body))
	need := s2.MaxEncodedLen(len(src))
	sp := scratch.Get().(*[]byte)
	defer scratch.Put(sp)
	if cap(*sp) < need {
		buf := make([]byte, need)
		if need <= maxScratch {
			*sp = buf // kept for the next; a rare larger one is not
		}
		sp = &buf
	}
	enc := s2.Encode((*sp)[:need], src)
	if len(enc) > len(body)-len(body)/8 {
		return body
	}
	out := make([]byte, 1+len(enc))
	out[0] = bodyS2
	copy(out[1:], enc)
	return out
}

// scratch holds encode buffers up to maxScratch (a 1 MiB body's).
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxScratch = 1<<20 + 64<<10

// preparedBody is a body encoded ahead for one database (PrepareBody).
type preparedBody struct {
	dialect Dialect
	body    string // the Body it encodes
	value   any
}

// PrepareBody encodes d's body as an insert on s's database will bind it,
// on the caller's goroutine: the webhook receiver calls it on the
// request's, so the group commit does not compress inside SQLite's one
// write transaction (8–9 µs a push there, serialised behind the writer).
// An insert of d takes it as long as Body is unchanged.
func (s *Store) PrepareBody(d *Delivery) {
	d.stored = preparedBody{dialect: s.Dialect, body: d.Body, value: storedBody(s.Dialect, d.Body)}
}

// storedBody is what an insert on dialect binds for d's body: what
// PrepareBody encoded, or encoded now.
func (d *Delivery) storedBody(dialect Dialect) any {
	if p := d.stored; p.value != nil && p.dialect == dialect && p.body == d.Body {
		return p.value
	}
	return storedBody(dialect, d.Body)
}

// bodyCell scans a delivery_bodies.body as storedBody wrote it.
type bodyCell struct{ body *string }

func (c bodyCell) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.body = ""
	case string:
		*c.body = v
	case []byte:
		s, err := decodeBody(v)
		if err != nil {
			return err
		}
		*c.body = s
	default:
		return fmt.Errorf("delivery body: a %T cannot be a body", v)
	}
	return nil
}

var _ sql.Scanner = bodyCell{}

// decodeBody reads a BLOB body: compressed by storedBody, or (a driver
// that returns text as bytes) the text itself.
func decodeBody(b []byte) (string, error) {
	if len(b) == 0 || b[0] != bodyS2 {
		return string(b), nil // JSON never starts with 0x01
	}
	n, err := s2.DecodedLen(b[1:])
	if err != nil || n > maxStoredBody {
		return "", fmt.Errorf("delivery body: not a valid compressed body (%d bytes stored): the row is damaged; restore it from a backup or let retention drop it", len(b))
	}
	out, err := s2.Decode(make([]byte, n), b[1:])
	if err != nil {
		return "", fmt.Errorf("delivery body: %v (%d bytes stored): the row is damaged; restore it from a backup or let retention drop it", err, len(b))
	}
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}
