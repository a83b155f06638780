//go:build linux

package dm

import (
	"errors"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileControl is an open /dev/mapper/control.
type fileControl struct{ fd int }

// openControl opens the control node read-write.
func openControl(path string) (controlFile, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &fileControl{fd: fd}, nil
}

// ioctl runs one device-mapper ioctl on buf; the error is the bare errno.
func (f *fileControl) ioctl(cmd int, buf []byte) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(f.fd), uintptr(ioctlRequest(cmd)), uintptr(unsafe.Pointer(&buf[0])))
	runtime.KeepAlive(buf)
	if e != 0 {
		return e
	}
	return nil
}

// waitReadable polls the control node for a device-mapper event (armed by
// DM_DEV_ARM_POLL) for at most timeout.
func (f *fileControl) waitReadable(timeout time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(timeout/time.Millisecond))
	if errors.Is(err, unix.EINTR) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return n > 0 && fds[0].Revents&unix.POLLIN != 0, nil
}

// Close closes the node.
func (f *fileControl) Close() error { return unix.Close(f.fd) }

// nodeKind is what statNode found at a path.
type nodeKind int

const (
	nodeMissing nodeKind = iota
	nodeBlock
	nodeChar
	nodeOther
)

// statNode stats path (following symlinks, as udev's /dev/mapper/NAME are
// symlinks to ../dm-N) and returns its kind and device number.
func statNode(path string) (nodeKind, DevNum, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nodeMissing, DevNum{}, nil
		}
		return nodeOther, DevNum{}, err
	}
	d := DevNum{Major: unix.Major(uint64(st.Rdev)), Minor: unix.Minor(uint64(st.Rdev))}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		return nodeBlock, d, nil
	case unix.S_IFCHR:
		return nodeChar, d, nil
	}
	return nodeOther, DevNum{}, nil
}

// isSymlink reports whether path itself is a symbolic link.
func isSymlink(path string) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// mknod makes a block (block true) or character device node with mode 0600
// (block nodes 0660, as udev makes them).
func mknod(path string, block bool, d DevNum) error {
	mode := uint32(unix.S_IFCHR | 0o600)
	if block {
		mode = unix.S_IFBLK | 0o660
	}
	return unix.Mknod(path, mode, int(unix.Mkdev(d.Major, d.Minor)))
}
