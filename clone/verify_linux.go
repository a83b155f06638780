package clone

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens path read-only with O_DIRECT; tmpfs (before Linux 6.6)
// and some other file systems refuse it (EINVAL).
func openDirect(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open O_DIRECT", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openDirectWrite opens path write-only with O_DIRECT.
func openDirectWrite(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open O_DIRECT for writing", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
