package gitlabapi

import (
	"testing"
	"time"
)

func TestParseDateTimeReadsWhatRubysDateTimeParseReads(t *testing.T) {
	day := time.Date(2021, 10, 10, 0, 0, 0, 0, time.UTC)
	at := time.Date(2021, 10, 10, 7, 28, 5, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Time // zero: refused
	}{
		{"ISO 8601 with zone", "2021-10-10T07:28:05Z", at},
		{"ISO 8601 with offset", "2021-10-10T09:28:05+02:00", at},
		{"ISO 8601 without zone is UTC", "2021-10-10T07:28:05", at},
		{"ISO 8601 with fraction", "2021-10-10T07:28:05.000Z", at},
		{"date and time with a space", "2021-10-10 07:28:05", at},
		{"date only", "2021-10-10", day},
		{"basic format yyyymmdd", "20211010", day},
		{"basic format with time", "20211010T072805Z", at},
		{"slashes year first", "2021/10/10", day},
		{"slashes year last are day first", "31/10/2021", time.Date(2021, 10, 31, 0, 0, 0, 0, time.UTC)},
		{"month first with a day over 12 is invalid, as in Ruby", "10/31/2021", time.Time{}},
		{"month name first with comma", "October 10, 2021", day},
		{"abbreviated month without comma", "Oct 10 2021", day},
		{"day first", "10 October 2021", day},
		{"day first abbreviated with dashes", "10-Oct-2021", day},
		{"ordinal day", "October 10th, 2021", day},
		{"weekday and time", "Sunday, October 10, 2021 07:28:05", at},
		{"HTTP date", "Sun, 10 Oct 2021 07:28:05 GMT", at},
		{"written date with offset", "10 Oct 2021 09:28:05 +0200", at},
		{"surrounding space", "  2021-10-10 ", day},
		{"a word is refused", "yesterday", time.Time{}},
		{"an unknown month is refused", "Octember 10, 2021", time.Time{}},
		{"an impossible day is refused", "June 31, 2021", time.Time{}},
		{"a bare number is refused", "10", time.Time{}},
		{"empty is refused", "", time.Time{}},
	}
	for _, tt := range tests {
		got, ok := ParseDateTime(tt.in)
		if ok != !tt.want.IsZero() || (ok && !got.Equal(tt.want)) {
			t.Errorf("%s: ParseDateTime(%q) = %v, %v; want %v", tt.name, tt.in, got, ok, tt.want)
		}
	}
}
