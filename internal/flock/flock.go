// Package flock takes exclusive advisory locks on open files (flock(2)).
// The kernel drops such a lock when its holder closes the file or dies, so
// a crashed holder never leaves a stale lock.
package flock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// TryLock takes an exclusive lock on f without waiting. It reports false
// when another open file holds the lock, or when a signal interrupted the
// call: try again later. Other failures are errors (the errno itself).
func TryLock(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK), errors.Is(err, unix.EINTR):
		return false, nil
	}
	return false, err
}
