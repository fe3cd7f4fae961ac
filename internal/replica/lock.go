package replica

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrSQLiteInUse is another `glenv serve` on the same SQLite file.
var ErrSQLiteInUse = errors.New("another glenv serve uses this SQLite database")

// LockSQLite keeps glenv to one serve process per SQLite file: SQLite has
// one writer and the process runtime's apps live on this machine, so a
// second replica needs PostgreSQL. The lock is an flock on <db>.serve-lock
// next to the database, which the kernel releases when the process ends,
// however it ends (kill -9 included). unlock releases it.
func LockSQLite(dbPath string) (unlock func(), err error) {
	path := dbPath + ".serve-lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock SQLite database: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid, _ := os.ReadFile(path)
			return nil, fmt.Errorf("%w (%s, lock %s held by pid %s): SQLite is single-replica; stop the other one, or run several replicas on PostgreSQL with --database-url postgres://…",
				ErrSQLiteInUse, dbPath, path, string(trimNL(pid)))
		}
		return nil, fmt.Errorf("lock SQLite database %s: %w", dbPath, err)
	}
	// Who holds it, for the message a second serve prints.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return func() { f.Close() }, nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
