package gitlabapi

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ParseDateTime reads a date and time the way Grape's DateTime and Time
// parameters do, through Ruby's DateTime.parse / Time.parse (Date._parse):
// not only ISO 8601 but the forms people and scripts write, such as
// "20211010", "2021/10/10", "31/10/2021" (day first, as Date._parse reads
// "a/b/yyyy"; "10/31/2021" is an invalid date in Ruby too), "October 10, 2021",
// "10 Oct 2021" and HTTP dates ("Sun, 10 Oct 2021 07:28:00 GMT"). A time
// without a zone is UTC, as DateTime.parse assumes +00:00. Ruby also guesses
// at fragments ("10" is the 10th of this month); those are refused here,
// since a client that sends them almost surely meant something else.
func ParseDateTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range dateTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return parseWrittenDate(s)
}

// dateTimeLayouts are the numeric forms, tried in order.
var dateTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 MST",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006/01/02 15:04:05",
	"2006/01/02",
	"02/01/2006 15:04:05",
	"02/01/2006",
	"20060102T150405Z0700",
	"20060102T150405",
	"20060102",
	time.RFC1123,
	time.RFC1123Z,
	time.RFC850,
	time.ANSIC,
}

// writtenDate is a date with the month's name: an optional weekday, then
// "October 10, 2021" or "10 Oct 2021", an optional time and zone.
var writtenDate = regexp.MustCompile(`(?i)^(?:[a-z]{3,9},?\s+)??` +
	`(?:(\d{1,2})(?:st|nd|rd|th)?[\s-]+([a-z]{3,9})\.?[\s,-]+(\d{4})|([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))` +
	`(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?` +
	`(?:\s*(utc|gmt|z|[+-]\d{2}:?\d{2}))?$`)

func parseWrittenDate(s string) (time.Time, bool) {
	m := writtenDate.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	day, monthName, year := m[1], m[2], m[3]
	if monthName == "" {
		monthName, day, year = m[4], m[5], m[6]
	}
	month, ok := monthOf(monthName)
	if !ok {
		return time.Time{}, false
	}
	n := func(v string) int { i, _ := strconv.Atoi(v); return i }
	loc := time.UTC
	if z := strings.ToLower(m[10]); z != "" && z != "utc" && z != "gmt" && z != "z" {
		z = strings.ReplaceAll(z, ":", "")
		off := (n(z[1:3])*60 + n(z[3:5])) * 60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	t := time.Date(n(year), month, n(day), n(m[7]), n(m[8]), n(m[9]), 0, loc)
	if t.Day() != n(day) || n(m[7]) > 23 || n(m[8]) > 59 || n(m[9]) > 59 {
		return time.Time{}, false // 31 June, 25:00: Date.parse refuses them too
	}
	return t.UTC(), true
}

// monthOf reads a month's English name or its three-letter abbreviation.
func monthOf(name string) (time.Month, bool) {
	name = strings.ToLower(name)
	for m := time.January; m <= time.December; m++ {
		full := strings.ToLower(m.String())
		if name == full || name == full[:3] || (name == "sept" && m == time.September) {
			return m, true
		}
	}
	return 0, false
}
