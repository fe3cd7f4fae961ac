// Package activitylog writes and reads activity logs (build, deploy and
// delete output) as append-only streams.
//
// Storage: chunks in the database (table activity_log_chunks), not files
// under the data dir. glenv is meant to run as several `glenv serve`
// replicas on one PostgreSQL, each able to serve any activity's log while
// another replica's worker writes it; files would be visible to one machine
// only, and would need their own retention, backup and clean-up beside the
// database's. A chunk row is written once per flush and never rewritten, so
// a log costs what is written: no per-line row rewrite (the old
// `log = log || $1`, quadratic on SQLite's single writer).
//
// Writing: Writer buffers lines in memory and a goroutine of its own flushes
// them as one chunk when FlushSize bytes are waiting or FlushInterval has
// passed, through Store.TxDeferrable, so webhook acknowledgements
// (Store.TxUrgent) go first. A line never waits for the database: when the
// buffer is full (the database is slow or down), lines are dropped and the
// log says so with a "[… N lines dropped …]" marker where they were. The log
// is kept within MaxSize by cutting its head; readers are told where.
//
// Reading: Read returns the log from a byte offset, so a follower resumes
// where it stopped and a log cut by retention says how much is gone.
//
// It must not block a caller's Line on I/O, and it holds no transaction open
// beyond one flush.
package activitylog
