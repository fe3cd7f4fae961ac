package gitlabapi

import "time"

// TimeLayout is how GitLab's API renders timestamps: UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime renders t as GitLab's API does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// FormatTimePtr renders t, or gives null for nil.
func FormatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := FormatTime(*t)
	return &s
}

// FormatTimeSet renders t, or gives null for the zero time.
func FormatTimeSet(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	return FormatTimePtr(&t)
}
