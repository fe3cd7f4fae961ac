package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestPositional(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"in order", "INSERT INTO t (a, b) VALUES ($1, $2)", "INSERT INTO t (a, b) VALUES (?, ?)"},
		{"multi-digit", "SELECT " + numbered(12), "SELECT " + strings.TrimSuffix(strings.Repeat("?,", 12), ",")},
		{"?NNN in order", "SELECT ?1, ?2", "SELECT ?, ?"},
		{"mixed $ and ?NNN in order", "SELECT $1, ?2", "SELECT ?, ?"},
		{"no parameters", "SELECT 1", "SELECT 1"},
		{"plain ? already", "SELECT ?, ?", "SELECT ?, ?"},
		{"plain ? beside a numbered one", "SELECT $1, ?", "SELECT $1, ?"},
		{"used twice", "SELECT $1 WHERE a = $1", "SELECT $1 WHERE a = $1"},
		{"out of order", "SELECT $2, $1", "SELECT $2, $1"},
		{"a gap", "SELECT $1, $3", "SELECT $1, $3"},
		{"starts above one", "SELECT $2", "SELECT $2"},
		{"leading zero", "SELECT $01", "SELECT $01"},
		{"named :", "SELECT $1, :name", "SELECT $1, :name"},
		{"named :1", "SELECT $1, :1", "SELECT $1, :1"},
		{"named @", "SELECT $1, @name", "SELECT $1, @name"},
		{"named $", "SELECT $1, $name", "SELECT $1, $name"},
		{"$ followed by a name after digits", "SELECT $1a", "SELECT $1a"},
		{"$ inside an identifier", "SELECT a$1 FROM t WHERE b = $1", "SELECT a$1 FROM t WHERE b = ?"},
		{"in a string literal", "SELECT '$2 and '' $3', $1", "SELECT '$2 and '' $3', ?"},
		{"json path literal", "SELECT json_extract(x, '$.a') FROM t WHERE id = $1", "SELECT json_extract(x, '$.a') FROM t WHERE id = ?"},
		{"in a quoted identifier", `SELECT "$9", $1`, `SELECT "$9", ?`},
		{"in backticks", "SELECT `$9`, $1", "SELECT `$9`, ?"},
		{"in brackets", "SELECT [$9], $1", "SELECT [$9], ?"},
		{"in a line comment", "SELECT $1 -- $1 again\n, $2", "SELECT ? -- $1 again\n, ?"},
		{"in a block comment", "SELECT $1 /* $5 */, $2", "SELECT ? /* $5 */, ?"},
		{"unterminated literal", "SELECT '$1", "SELECT '$1"},
		{"unterminated comment", "SELECT $1 /* ", "SELECT $1 /* "},
		{"one statement with a trailing ;", "SELECT $1;\n", "SELECT ?;\n"},
		{"two statements", "SELECT $1; SELECT $2", "SELECT $1; SELECT $2"},
		{"; in a literal", "SELECT ';', $1", "SELECT ';', ?"},
		{"lone $", "SELECT '$' || $1", "SELECT '$' || ?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := positional(c.in); got != c.want {
				t.Fatalf("positional(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

func numbered(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "$%d", i)
	}
	return b.String()
}

// The SQLite pool's statements, rewritten or not, bind each argument
// where its number says: a rewrite that moved one would put a value in
// another column or compare with the wrong one.
func TestTheSQLiteStatementCacheBindsNumberedParametersAsWritten(t *testing.T) {
	s := openSQLite(t)
	ctx := context.Background()
	if _, err := s.DB.ExecContext(ctx, `CREATE TABLE p (a TEXT, b TEXT, c TEXT)`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO p (a, b, c) VALUES ($1, $2, $3)`, []any{"a0", "b0", "c0"}},                // rewritten
		{`INSERT INTO p (c, b, a) VALUES ($3, $2, $1)`, []any{"a1", "b1", "c1"}},                // as written
		{`INSERT INTO p (a, b, c) VALUES ($1, '$2', $2)`, []any{"x", "y"}},                      // rewritten around a literal
		{`INSERT INTO p (a, b, c) VALUES ($1, $2, $1 || $2)`, []any{"a3", "b3"}},                // as written: $1 twice
		{"INSERT INTO p (a, b, c) VALUES ($1, /* $3 */ $2, $3) -- $4", []any{"a4", "b4", "c4"}}, // rewritten around comments
	} {
		// Twice: prepared on the first call, cached on the second.
		for j := 0; j < 2; j++ {
			if _, err := s.DB.ExecContext(ctx, c.q, c.args...); err != nil {
				t.Fatalf("%s: %v", c.q, err)
			}
		}
	}
	got := map[string]bool{}
	rows, err := s.DB.QueryContext(ctx, `SELECT a, b, c FROM p WHERE a <> $1 ORDER BY rowid`, "none")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a, b, c string
		if err := rows.Scan(&a, &b, &c); err != nil {
			t.Fatal(err)
		}
		got[a+" "+b+" "+c] = true
	}
	for _, want := range []string{"a0 b0 c0", "a1 b1 c1", "x $2 y", "a3 b3 a3b3", "a4 b4 c4"} {
		if !got[want] {
			t.Errorf("row %q missing; rows: %v", want, got)
		}
	}
	if len(got) != 5 {
		t.Errorf("rows: %v, want 5 distinct ones", got)
	}
}

// BenchmarkBindPlaceholders measures one multi-row insert of 8 rows of 30
// columns on SQLite through the store's statement cache (as a batch's new
// environments are written), with its parameters in order (rewritten to
// ?, as glenv runs it) and with the last two swapped (so the rewrite
// leaves it numbered: SQLite's cost before it), in the same run.
func BenchmarkBindPlaceholders(b *testing.B) {
	const rows, cols = 8, 30
	var names []string
	for c := 0; c < cols; c++ {
		names = append(names, fmt.Sprintf("c%d", c))
	}
	for _, swapped := range []bool{false, true} {
		name := "rewritten"
		if swapped {
			name = "numbered"
		}
		b.Run(name, func(b *testing.B) {
			s := openSQLite(b)
			ctx := context.Background()
			if _, err := s.DB.ExecContext(ctx, `CREATE TABLE w (`+strings.Join(names, " TEXT, ")+` TEXT)`); err != nil {
				b.Fatal(err)
			}
			var tuples []string
			for r := 0; r < rows; r++ {
				tuples = append(tuples, "("+placeholdersFrom(r*cols+1, cols)+")")
			}
			q := `INSERT INTO w VALUES ` + strings.Join(tuples, ", ")
			if swapped {
				n := rows * cols
				q = strings.TrimSuffix(q, fmt.Sprintf("$%d,$%d)", n-1, n)) + fmt.Sprintf("$%d,$%d)", n, n-1)
			}
			if rewritten := positional(q) != q; rewritten == swapped {
				b.Fatalf("the %s variant is not what it says: %s", name, positional(q))
			}
			args := make([]any, rows*cols)
			for i := range args {
				args[i] = fmt.Sprint("value-", i)
			}
			b.ResetTimer()
			for b.Loop() {
				tx, err := s.DB.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					b.Fatal(err)
				}
				if err := tx.Rollback(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/insert")
		})
	}
}
