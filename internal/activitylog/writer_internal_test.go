package activitylog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		text string
		size int
		want []string
	}{
		{"text within the size stays whole", "abc", 4, []string{"abc"}},
		{"text over the size is cut at the size", "abcdefg", 3, []string{"abc", "def", "g"}},
		{"a cut never splits a rune", "aé€x", 3, []string{"aé", "€", "x"}},
		{"a rune wider than the size goes whole", "€€", 2, []string{"€", "€"}},
		{"empty text is one empty piece", "", 3, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := split(tt.text, tt.size)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("split(%q, %d) = %q, want %q", tt.text, tt.size, got, tt.want)
			}
			if strings.Join(got, "") != tt.text {
				t.Fatalf("pieces %q do not add up to %q", got, tt.text)
			}
		})
	}
}

func TestSplitKeepsEveryPieceValidUTF8(t *testing.T) {
	text := strings.Repeat("ab€é", 1000)
	for _, p := range split(text, 7) {
		if !utf8.ValidString(p) || len(p) > 7 {
			t.Fatalf("piece %q: valid %v, %d bytes", p, utf8.ValidString(p), len(p))
		}
	}
}

func TestTake(t *testing.T) {
	tests := []struct {
		name         string
		pending      string
		pendingDrops int
		buf          string
		dropped      int
		want         string
		wantDrops    int
	}{
		{"buffered lines go out as they are", "", 0, "a\nb\n", 0, "a\nb\n", 0},
		{"lines dropped after the buffer are marked after it", "", 0, "a\n", 3, "a\n" + dropMarker(3), 3},
		{"a failed flush goes first, then what came since", "a\n", 0, "b\n", 0, "a\nb\n", 0},
		{"drops during an outage add up in one marker", "a\n" + dropMarker(3), 3, "", 2, "a\n" + dropMarker(5), 5},
		{"lines kept between drops keep the markers apart", "a\n" + dropMarker(3), 3, "b\n", 2, "a\n" + dropMarker(3) + "b\n" + dropMarker(2), 2},
		{"a failed flush ending in a marker, nothing new", "a\n" + dropMarker(3), 3, "", 0, "a\n" + dropMarker(3), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Writer{pending: tt.pending, pendingDrops: tt.pendingDrops, dropped: tt.dropped, dropping: tt.dropped > 0}
			w.buf.WriteString(tt.buf)
			got, drops := w.take()
			if got != tt.want || drops != tt.wantDrops {
				t.Fatalf("take() = %q, %d; want %q, %d", got, drops, tt.want, tt.wantDrops)
			}
			if w.pending != "" || w.buf.Len() != 0 || w.dropped != 0 || w.dropping {
				t.Fatalf("take left state behind: %+v", w)
			}
		})
	}
}
