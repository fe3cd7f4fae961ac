package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"time"
)

var funcs = template.FuncMap{
	"age":   age,
	"short": short,
	"badge": func(state string) template.HTML { return template.HTML(stateBadge(state)) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"took": func(from, to time.Time) string {
		if from.IsZero() || to.IsZero() {
			return "—"
		}
		return to.Sub(from).Round(10 * time.Millisecond).String()
	},
	"field": func(m map[string]any, k string) any {
		switch v := m[k].(type) {
		case nil:
			return ""
		case []any, map[string]any:
			b, _ := json.Marshal(v)
			return string(b)
		case string:
			if v == "0001-01-01T00:00:00Z" {
				return "—" // a time that never happened (never used, never revoked)
			}
			return v
		default:
			return v
		}
	},
	"eventid": func(t time.Time) int64 { return t.UnixMicro() },
}

// age says how long ago t was, in the largest unit that fits.
func age(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}
