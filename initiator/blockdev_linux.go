//go:build linux

package initiator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ensureDevNode makes path a block device node for major:minor when it is
// missing (there may be no udev), and refuses a path that is something
// else: a stale node from an earlier disk must not be used for this one.
func ensureDevNode(path string, major, minor uint32) error {
	want := unix.Mkdev(major, minor)
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(want)); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create device node %s (%d:%d): %w", path, major, minor, os.NewSyscallError("mknod", err))
		}
		if err := unix.Stat(path, &st); err != nil {
			return fmt.Errorf("device node %s: %w", path, err)
		}
	} else if err != nil {
		return fmt.Errorf("device node %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != want {
		return fmt.Errorf("device node %s is not block device %d:%d (mode %o, rdev %d:%d): remove the stale node and retry", path, major, minor, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return nil
}

// SetReadOnly marks the block device at path read-only (BLKROSET) and
// checks it took (BLKROGET). Writes through any open of the device then
// fail with EPERM, and so do read-write opens by the device-mapper
// (dm-clone opens its source read-only and is unaffected). The flag lives
// as long as the disk: set it again after each login.
func (c *Client) SetReadOnly(path string) error {
	return setReadOnly(path, true)
}

// SetReadWrite clears the read-only flag of the block device at path
// (BLKROSET 0) and checks it took: the online cutover's pass-through,
// where the host's writes go through the proxy to the old LUN.
func (c *Client) SetReadWrite(path string) error {
	return setReadOnly(path, false)
}

// openSettleTime is how long an open of a disk that sysfs already shows may
// fail with ENXIO: the SCSI disk's gendisk is registered a moment after its
// sysfs entry (seen in the lab right after login).
const openSettleTime = 5 * time.Second

func setReadOnly(path string, on bool) error {
	want := map[bool]int{true: 1, false: 0}[on]
	var f *os.File
	var err error
	for deadline := time.Now().Add(openSettleTime); ; {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil || !errors.Is(err, unix.ENXIO) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("initiator: set read-only: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("initiator: set read-only: %w", err)
	}
	if st.Mode()&fs.ModeDevice == 0 || st.Mode()&fs.ModeCharDevice != 0 {
		return fmt.Errorf("initiator: set read-only %s: not a block device", path)
	}
	fd := int(f.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.BLKROSET, want); err != nil {
		return fmt.Errorf("initiator: set read-only %s: %w", path, os.NewSyscallError("ioctl BLKROSET", err))
	}
	ro, err := unix.IoctlGetInt(fd, unix.BLKROGET)
	if err != nil {
		return fmt.Errorf("initiator: set read-only %s: %w", path, os.NewSyscallError("ioctl BLKROGET", err))
	}
	if ro != want {
		return fmt.Errorf("initiator: set read-only %s: BLKROGET reports %d after BLKROSET %d", path, ro, want)
	}
	return nil
}

// ReadOnly reports whether the block device at path is read-only (BLKROGET).
func (c *Client) ReadOnly(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("initiator: read-only flag: %w", err)
	}
	defer f.Close()
	ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	if err != nil {
		return false, fmt.Errorf("initiator: read-only flag %s: %w", path, os.NewSyscallError("ioctl BLKROGET", err))
	}
	return ro != 0, nil
}
