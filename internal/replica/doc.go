// Package replica lets several `glenv serve` processes share one PostgreSQL
// (issue 16): each registers itself and heartbeats; the environments the
// process runtime runs are owned by one replica at a time, whose own River
// queue their deploy, pause and remove jobs go to; a request for an
// environment another replica runs is forwarded there, signed; and when a
// replica's heartbeat stops, one of the others takes its environments over
// in the transaction that removes it. On SQLite, which has one writer and
// lives on one machine, a file lock keeps glenv to one process.
//
// Deciding who is dead and who takes what is pure (dead.go); the rest is
// the database and HTTP. It must not run apps or call GitLab.
package replica
