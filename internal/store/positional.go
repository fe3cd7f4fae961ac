package store

import "strings"

// glenv writes one SQL for both databases, with PostgreSQL's numbered
// parameters ($1, $2, …), which SQLite accepts too. But SQLite keeps
// numbered (named) parameters in a list it searches from the start for
// each one (sqlite3VListNumToName, through sqlite3_bind_parameter_name,
// which modernc.org/sqlite calls for every parameter it binds), so binding
// a statement of n parameters costs n²: a batch's multi-row insert of 8
// environments has 8 × 30 of them, and binding was 44 % of its time and
// 10 % of the delivery drain's hold on SQLite's one writer (CPU profile of
// BenchmarkDrainWriterHold). Anonymous parameters (?) are not in that
// list: SQLite numbers them in order of appearance and names none. So a
// statement whose numbered parameters appear exactly as $1, $2, …, $n, in
// that order, each once, means the same with each written ?, and the SQLite
// statement cache prepares it that way (BenchmarkBindPlaceholders). Any
// other statement (a parameter used twice, out of order, named, ? already,
// or several statements in one string, which number their ? each from 1)
// is prepared as written.

// positional returns query with its numbered parameters written ?, when
// they are $1 … $n (or ?1 … ?n) in order, each once; otherwise query. It
// skips string literals, quoted identifiers and comments.
func positional(query string) string {
	var out []byte
	next := 1 // the parameter number expected next
	last := 0 // query[last:] is not yet copied to out
	for i := 0; i < len(query); i++ {
		switch c := query[i]; c {
		case '\'', '"', '`':
			j := closing(query, i+1, c)
			if j < 0 {
				return query
			}
			i = j
		case '[':
			j := closing(query, i+1, ']')
			if j < 0 {
				return query
			}
			i = j
		case '-':
			if i+1 < len(query) && query[i+1] == '-' {
				j := i + 2
				for j < len(query) && query[j] != '\n' {
					j++
				}
				i = j
			}
		case '/':
			if i+1 < len(query) && query[i+1] == '*' {
				j := i + 2
				for j+1 < len(query) && (query[j] != '*' || query[j+1] != '/') {
					j++
				}
				if j+1 >= len(query) {
					return query
				}
				i = j + 1
			}
		case ';':
			// Several statements: SQLite numbers each one's ? from 1.
			if strings.TrimSpace(query[i+1:]) != "" {
				return query
			}
		case ':', '@':
			// :name, :1, @name: named parameters.
			if i+1 < len(query) && isNameByte(query[i+1]) {
				return query
			}
		case '$', '?':
			if c == '$' && i > 0 && isNameByte(query[i-1]) {
				// SQLite allows $ inside an identifier (a$1).
				for i+1 < len(query) && (isNameByte(query[i+1]) || query[i+1] == '$') {
					i++
				}
				continue
			}
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			if j == i+1 {
				if c == '?' || (j < len(query) && isNameByte(query[j])) {
					// A plain ? already, or $name.
					return query
				}
				continue
			}
			if j < len(query) && isNameByte(query[j]) || !isNumber(query[i+1:j], next) {
				return query
			}
			out = append(out, query[last:i]...)
			out = append(out, '?')
			last = j
			next++
			i = j - 1
		}
	}
	if out == nil {
		return query
	}
	return string(append(out, query[last:]...))
}

// closing is the index of the quote q that ends a quoted run starting at
// from (a doubled quote stands for itself), or -1.
func closing(s string, from int, q byte) int {
	for j := from; j < len(s); j++ {
		if s[j] == q {
			if q != ']' && j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j
		}
	}
	return -1
}

func isNameByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

// isNumber reports whether digits spell n exactly (no leading zero).
func isNumber(digits string, n int) bool {
	v := 0
	for i := 0; i < len(digits); i++ {
		if i == 0 && digits[i] == '0' {
			return false
		}
		v = v*10 + int(digits[i]-'0')
		if v > n {
			return false
		}
	}
	return v == n
}
