package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestCellsCannotForgeRowsOrRewriteTheTerminal(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain names are shown as they are", "feature/login", "feature/login"},
		{"non-ASCII letters are kept", "fix-äöü-ß-日本", "fix-äöü-ß-日本"},
		{"a newline cannot start a forged row", "x\nadmin  admin  root", `x\nadmin  admin  root`},
		{"a carriage return cannot overwrite the row", "ok\rEVIL", `ok\rEVIL`},
		{"a tab cannot shift columns", "a\tb", `a\tb`},
		{"an escape sequence cannot colour or clear the terminal", "\x1b[2J\x1b[31mred", `\x1b[2J\x1b[31mred`},
		{"a C1 control is escaped", "a\u009bb", `a\u009bb`},
		{"a bidi override cannot reverse what follows", "main\u202egnp.exe", `main\u202egnp.exe`},
		{"a Unicode line separator is escaped", "a\u2028b", `a\u2028b`},
		{"invalid UTF-8 is shown as bytes", "a\xffb", `a\xffb`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cell(tc.in); got != tc.want {
				t.Fatalf("cell(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestATableHasOneLinePerRowWhateverItsCells(t *testing.T) {
	var b bytes.Buffer
	table(&b, []string{"ID", "NAME", "ROLE"}, [][]string{
		{"1", "ci\n2\tforged\tadmin", "member"},
		{"3", "\x1b]0;title\x07x", "member"},
	})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || strings.ContainsAny(b.String(), "\x1b\x07\t\r") {
		t.Fatalf("table of 2 rows printed %d lines:\n%s", len(lines), b.String())
	}
}
