package data

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The services PostgreSQL glenv runs is supervised: when postgres exits
// before glenv stops it, it is logged and started again with backoff, and
// Ready reports why it cannot serve meanwhile.

var errExited = errors.New("postgres exited")

// start launches a postgres process and watches for its exit.
func (m *managed) start() error {
	cmd, err := m.launch()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(done)
	}()
	return nil
}

func (m *managed) exitErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *managed) current() (*exec.Cmd, chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd, m.done
}

// accepting waits until the current process accepts connections (30s at
// most), it exits (errExited), or ctx ends.
func (m *managed) accepting(ctx context.Context, p *Postgres) error {
	_, done := m.current()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := p.connect(ctx, "")
		if err == nil {
			c.Close(ctx)
			return nil
		}
		select {
		case <-done:
			return errExited
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL for services did not accept connections within 30s: %w (see %s)", err, filepath.Join(m.dir, "postgresql.log"))
		}
	}
}

// supervise starts the server again whenever it exits before stop, with
// backoff, and logs each exit and restart; Down says meanwhile why it
// cannot serve.
func (m *managed) supervise(p *Postgres) {
	defer close(m.finished)
	failures := 0
	for {
		_, done := m.current()
		upSince := time.Now()
		select {
		case <-m.quit:
			return
		case <-done:
		}
		if time.Since(upSince) > time.Minute {
			failures = 0
		}
		logPath := filepath.Join(m.dir, "postgresql.log")
		out, _ := os.ReadFile(logPath)
		why := fmt.Sprintf("postgres exited (%v)", m.exitErr())
		m.setDown(why)
		m.log.Error("the services PostgreSQL exited; glenv starts it again", "err", m.exitErr(), "log", logPath, "tail", tail(string(out), 400))
		for {
			wait := min(time.Second<<min(failures, 6), time.Minute)
			failures++
			select {
			case <-m.quit:
				return
			case <-time.After(wait):
			}
			err := m.start()
			if err == nil {
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					select {
					case <-m.quit:
						cancel()
					case <-ctx.Done():
					}
				}()
				err = m.accepting(ctx, p)
				cancel()
				if err != nil {
					m.kill()
				}
			}
			if err != nil {
				m.setDown(fmt.Sprintf("%s; starting it again failed: %v", why, err))
				m.log.Warn("the services PostgreSQL did not start again; retrying", "err", err, "retry_in", min(time.Second<<min(failures, 6), time.Minute), "log", logPath)
				continue
			}
			// What failed clones left goes before anyone is told it is back.
			p.cleanUp()
			m.setDown("")
			m.log.Info("the services PostgreSQL is serving again", "after_attempts", failures)
			break
		}
	}
}

func (m *managed) setDown(why string) {
	m.mu.Lock()
	m.down = why
	m.mu.Unlock()
}

// Down is why the server does not serve now, "" when it does.
func (m *managed) Down() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// kill ends the current process group at once (a start that failed).
func (m *managed) kill() {
	cmd, done := m.current()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// stop is a fast shutdown (SIGINT to the postmaster): sessions are ended,
// data is kept. The postmaster, not bwrap, gets the signal: bwrap would die
// of it and take the server down uncleanly. Supervision ends first, so
// nothing starts it again.
func (m *managed) stop() error {
	m.mu.Lock()
	select {
	case <-m.quit:
	default:
		close(m.quit)
	}
	m.mu.Unlock()
	<-m.finished
	cmd, done := m.current()
	if cmd == nil {
		return nil
	}
	pid := 0
	if b, err := os.ReadFile(filepath.Join(m.pgdata, "postmaster.pid")); err == nil {
		pid, _ = strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	}
	select {
	case <-done:
		return nil
	default:
	}
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGINT)
	} else {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	return nil
}
