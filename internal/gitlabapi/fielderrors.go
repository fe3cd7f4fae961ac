package gitlabapi

import (
	"bytes"
	"encoding/json"
	"strings"
)

// FieldErrors is an ActiveRecord errors hash, keeping the order in which
// the model's validations ran (a Go map would sort the keys).
type FieldErrors struct {
	keys []string
	msgs map[string][]string
}

// Add records msg against field.
func (e *FieldErrors) Add(field, msg string) {
	if e.msgs == nil {
		e.msgs = map[string][]string{}
	}
	if _, ok := e.msgs[field]; !ok {
		e.keys = append(e.keys, field)
	}
	e.msgs[field] = append(e.msgs[field], msg)
}

// Empty reports whether no validation failed.
func (e *FieldErrors) Empty() bool { return len(e.keys) == 0 }

// MarshalJSON writes {field: [msgs]} with the fields in validation order.
func (e FieldErrors) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range e.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(e.msgs[k])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// RubyInspect renders the errors the way Ruby's Hash#inspect does, for the
// messages GitLab builds by string interpolation ("Note {:note=>[...]}").
func (e FieldErrors) RubyInspect() string {
	var parts []string
	for _, k := range e.keys {
		var msgs []string
		for _, m := range e.msgs[k] {
			q, _ := json.Marshal(m)
			msgs = append(msgs, string(q))
		}
		parts = append(parts, ":"+k+"=>["+strings.Join(msgs, ", ")+"]")
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
