// Package attr reads sysfs and configfs attributes with the fewest system
// calls: open, one read, close. The kernel renders an attribute whole (at
// most a page) at the first read, so a larger buffer gets all of it, and a
// short read is the end. os.ReadFile makes four calls more per file
// (registering the file with the poller and removing it again, fstat, a
// read that returns EOF); under emulation, where every call costs about a
// millisecond, a status of many volumes spent most of its time there.
//
//	b, err := attr.Read("/sys/class/iscsi_session/session1/state")
//
// Errors are *os.PathError wrapping the errno, as os.ReadFile's are.
// Regular files are not attributes: a short read need not be their end.
package attr

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// bufSize holds any attribute (a page, 4 KiB on x86) in one read.
const bufSize = 8192

// Read returns the attribute at path.
func Read(path string) ([]byte, error) {
	fd, err := open(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, bufSize)
	n := 0
	for {
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		n += m
		if m == 0 || n < len(buf) {
			return buf[:n], nil
		}
		buf = append(buf, make([]byte, len(buf))...) // not an attribute's size: read on to EOF
	}
}

func open(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}
