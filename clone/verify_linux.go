package clone

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens path read-only with O_DIRECT; tmpfs and some other file
// systems refuse it (EINVAL).
func openDirect(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open O_DIRECT", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// dropCache asks the kernel to drop cached pages of the range before a
// buffered read, so that it reads the device, not what an earlier read
// left behind (best effort: clean pages only).
func dropCache(f *os.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
