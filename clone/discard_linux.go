package clone

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openExclusive opens the block device path for writing with O_EXCL: it
// fails (EBUSY) while another opener holds it exclusively (a LIO iblock
// export, a mount).
func openExclusive(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open exclusive", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// blkDiscard discards length bytes at offset (ioctl BLKDISCARD, whose
// argument is {start, length} in bytes).
func blkDiscard(f *os.File, offset, length uint64) error {
	r := [2]uint64{offset, length}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&r[0])))
	if errno != 0 {
		return os.NewSyscallError("ioctl BLKDISCARD", errno)
	}
	return nil
}
