package activitylog

import (
	"context"
	"fmt"

	"github.com/glenv/glenv/internal/store"
)

// PageSize is how much of a log one Read returns at most (about: it stops
// at the first chunk boundary past it).
const PageSize = 1 << 20

// Part is a piece of a log read from an offset.
type Part struct {
	// Text is the log from the offset asked for; when retention cut that
	// part, it starts with a line saying how much is gone.
	Text string
	// Next is the offset to read from next time.
	Next int64
}

// Read returns activity id's log from offset (0 = its start). An offset at
// the end gives an empty Text and Next = offset; store.ErrNotFound means no
// such activity.
func Read(ctx context.Context, q store.Querier, id, offset int64) (Part, error) {
	if offset < 0 {
		return Part{}, fmt.Errorf("offset %d: must be a number of bytes ≥ 0", offset)
	}
	p, err := store.ReadLog(ctx, q, id, offset, PageSize)
	if err != nil {
		return Part{}, err
	}
	text := p.Text
	if p.From > offset {
		text = CutNotice(p.From-offset) + text
	}
	return Part{Text: text, Next: p.Next}, nil
}

// CutNotice is the line that stands for n bytes retention dropped.
func CutNotice(n int64) string {
	return fmt.Sprintf("[… %d bytes cut from the start of this log by retention (--activity-log-max-size, --activity-log-retention) …]\n", n)
}
