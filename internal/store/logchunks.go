package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// An activity's log is a byte stream stored as append-only chunks: each
// append inserts one row covering [start_off, end_off) and never rewrites
// an earlier one, so writing a log costs what is written (the old single
// TEXT column was rewritten per line: quadratic). Offsets are stable for
// the life of the log, so a reader resumes from the offset it last got;
// retention drops whole chunks from the head and records the new start in
// activities.log_cut.

// CleanLog makes text storable on both databases: PostgreSQL's TEXT refuses
// NUL bytes and invalid UTF-8, which build output may hold.
func CleanLog(text string) string {
	if strings.IndexByte(text, 0) >= 0 {
		text = strings.ReplaceAll(text, "\x00", "\uFFFD")
	}
	return strings.ToValidUTF8(text, "\uFFFD")
}

// AppendLog appends text (cleaned by CleanLog) to activity id's log as one
// chunk and returns the log's new end offset. Two appenders racing on one
// activity cannot both take the same start: the primary key refuses the
// second, which fails rather than interleaving. An activity that is gone
// (retention forgot it while a late flush was on its way) takes nothing:
// ErrNotFound, and no chunk is left that nothing would ever remove.
func AppendLog(ctx context.Context, q Querier, id int64, text string) (int64, error) {
	text = CleanLog(text)
	if text == "" {
		return LogEnd(ctx, q, id)
	}
	var end int64
	err := q.QueryRowContext(ctx, `INSERT INTO activity_log_chunks (activity_id, start_off, end_off, data, created_at)
		SELECT CAST($1 AS BIGINT), s.o, s.o + CAST($2 AS BIGINT), CAST($3 AS TEXT), CAST($4 AS BIGINT)
		FROM (SELECT `+logEndExpr+` AS o) s
		WHERE EXISTS (SELECT 1 FROM activities WHERE id = $1)
		RETURNING end_off`, id, int64(len(text)), text, micros(Now())).Scan(&end)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("activity %d: %w", id, ErrNotFound)
	}
	return end, err
}

// logEndExpr is the end offset of log $1: the end of its last chunk, else
// where retention cut it, else 0. It reads the primary key's last entry only.
const logEndExpr = `COALESCE((SELECT end_off FROM activity_log_chunks WHERE activity_id = $1 ORDER BY start_off DESC LIMIT 1),
	(SELECT log_cut FROM activities WHERE id = $1), 0)`

// LogEnd is the end offset of an activity's log (its length as written).
func LogEnd(ctx context.Context, q Querier, id int64) (int64, error) {
	var end int64
	err := q.QueryRowContext(ctx, `SELECT `+logEndExpr, id).Scan(&end)
	return end, err
}

// LogPart is a piece of an activity's log read from an offset.
type LogPart struct {
	// Text holds the log's bytes [From, Next).
	Text string
	// From is where Text starts: the offset asked for, or later when
	// retention cut the log's head (Cut) after it.
	From, Next int64
	// Cut is where the kept log starts; bytes before it were dropped.
	Cut int64
}

// maxLogChunks bounds the rows one ReadLog loads.
const maxLogChunks = 256

// ReadLog returns activity id's log from offset, at least limit bytes where
// the log has them (it stops at the first chunk boundary past limit). An
// offset at or past the end gives an empty Text with From = Next = the end.
func ReadLog(ctx context.Context, q Querier, id, offset int64, limit int) (LogPart, error) {
	var p LogPart
	if err := q.QueryRowContext(ctx, `SELECT log_cut FROM activities WHERE id = $1`, id).Scan(&p.Cut); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return p, ErrNotFound
		}
		return p, err
	}
	p.From = max(offset, p.Cut)
	// The chunk holding From is the last one starting at or before it.
	rows, err := q.QueryContext(ctx, `SELECT start_off, data FROM activity_log_chunks WHERE activity_id = $1
		AND start_off >= COALESCE((SELECT MAX(start_off) FROM activity_log_chunks WHERE activity_id = $1 AND start_off <= $2), 0)
		AND end_off > $2 ORDER BY start_off LIMIT $3`, id, p.From, maxLogChunks)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	var b strings.Builder
	first := true
	for b.Len() < limit && rows.Next() {
		var start int64
		var data string
		if err := rows.Scan(&start, &data); err != nil {
			return p, err
		}
		if first && start > p.From {
			p.From = start // cut meanwhile: the kept log starts later
		}
		first = false
		if start < p.From {
			data = data[p.From-start:]
		}
		b.WriteString(data)
	}
	if err := rows.Err(); err != nil {
		return p, err
	}
	p.Text = b.String()
	p.Next = p.From + int64(len(p.Text))
	if p.Text == "" {
		end, err := LogEnd(ctx, q, id)
		if err != nil {
			return p, err
		}
		p.From = min(p.From, end) // asked past the end: resume from the end
		p.Next = p.From
	}
	return p, nil
}

// CapLog keeps the tail of activity id's log within keep bytes (plus at
// most the chunk that straddles the line): whole chunks before it are
// deleted and log_cut moves past them. It returns the bytes dropped.
func CapLog(ctx context.Context, q Querier, id, keep int64) (int64, error) {
	var end, cut int64
	if err := q.QueryRowContext(ctx, `SELECT `+logEndExpr+`, COALESCE((SELECT log_cut FROM activities WHERE id = $1), 0)`, id).Scan(&end, &cut); err != nil {
		return 0, err
	}
	line := end - keep
	if line <= cut {
		return 0, nil
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM activity_log_chunks WHERE activity_id = $1 AND start_off < $2 AND end_off <= $2`, id, line); err != nil {
		return 0, err
	}
	var newCut int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MIN(start_off), $2) FROM activity_log_chunks WHERE activity_id = $1`, id, end).Scan(&newCut); err != nil {
		return 0, err
	}
	if newCut <= cut {
		return 0, nil
	}
	_, err := q.ExecContext(ctx, `UPDATE activities SET log_cut = $1 WHERE id = $2`, newCut, id)
	return newCut - cut, err
}

// ActivitiesWithLogCompletedBefore lists, in id order after the id after,
// activities completed before before that still have log chunks: the logs
// retention drops after --activity-log-retention. It walks the chunks, so
// logs already dropped cost nothing.
func ActivitiesWithLogCompletedBefore(ctx context.Context, q Querier, before time.Time, after int64, limit int) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT c.activity_id FROM activity_log_chunks c JOIN activities a ON a.id = c.activity_id
		WHERE a.completed_at > 0 AND a.completed_at < $1 AND c.activity_id > $2 ORDER BY c.activity_id LIMIT $3`, micros(before), after, limit)
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}

// ActivitiesWithLogSince lists, in id order after the id after, activities
// that had log written at or after since (every one with a log for a zero
// since): the ones retention's log cap must look at.
func ActivitiesWithLogSince(ctx context.Context, q Querier, since time.Time, after int64, limit int) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT activity_id FROM activity_log_chunks
		WHERE created_at >= $1 AND activity_id > $2 ORDER BY activity_id LIMIT $3`, micros(since), after, limit)
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}

func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// scanIDSet is scanIDs as a set.
func scanIDSet(rows *sql.Rows) (map[int64]bool, error) {
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, err
	}
	set := make(map[int64]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set, nil
}
