package plan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lunferry/lunferry/internal/flock"
)

// Lock is the state directory's lock: an exclusive flock on Dir/lock that
// also records the holder's pid, so that a second lunferry can say who holds
// it. The kernel drops the flock when the holder dies, so a crash never
// leaves a stale lock.
type Lock struct {
	f *os.File
}

// AcquireLock takes the lock of dir, waiting up to wait (0: fail at once).
// A lock still held after wait is an ErrLocked error naming the holder's pid.
func AcquireLock(ctx context.Context, dir string, wait time.Duration) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, stateDirErr(dir, fmt.Errorf("plan: create state directory %s: %w", dir, err))
	}
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, stateDirErr(dir, fmt.Errorf("plan: open lock %s: %w", path, err))
	}
	deadline := time.Now().Add(wait)
	for {
		ok, err := flock.TryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("plan: lock %s: %w", path, err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			holder := readHolder(f)
			f.Close()
			return nil, fmt.Errorf("plan: %w (%s, held by %s): wait for it to finish or stop it, then retry",
				ErrLocked, path, holder)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("plan: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

func readHolder(f *os.File) string {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid := strings.TrimSpace(string(buf[:n]))
	if pid == "" {
		return "an unknown process"
	}
	return "pid " + pid
}

// Release drops the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
	return err
}
