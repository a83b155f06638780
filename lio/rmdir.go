package lio

import (
	"os"

	"golang.org/x/sys/unix"
)

// removeDir calls rmdir(2) only: os.Remove would fall back to unlink and
// mask the errno configfs returns (EBUSY, ENOTEMPTY, EPERM).
func removeDir(path string) error {
	if err := unix.Rmdir(path); err != nil {
		return &os.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}
