//go:build linux

package scsi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openSettleTime is how long an open of a disk that sysfs already shows
// may fail with ENXIO: the gendisk is registered a moment after its sysfs
// entry (seen in the lab right after login).
const openSettleTime = 5 * time.Second

// Open opens the block device path read-only and non-blocking, which is
// all SG_IO on an sd disk needs (root may send any command; others only
// the read-safe ones).
func Open(path string) (*Device, error) {
	var f *os.File
	var err error
	for deadline := time.Now().Add(openSettleTime); ; time.Sleep(50 * time.Millisecond) {
		f, err = os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil || !errors.Is(err, unix.ENXIO) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("scsi: open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("scsi: open: %w", err)
	}
	if st.Mode()&fs.ModeDevice == 0 {
		f.Close()
		return nil, fmt.Errorf("scsi: open %s: not a device", path)
	}
	return &Device{f: f}, nil
}

// DataIn implements Commander with one SG_IO ioctl. An ioctl error
// (ENOTTY: not a SCSI device) wraps the errno; a failed command is a
// *CheckConditionError or *StatusError.
func (d *Device) DataIn(cdb, buf []byte) (int, error) {
	sense := make([]byte, senseSize)
	return d.sgio(newSgIOHdr(cdb, buf, sense, d.timeout()), cdb, buf, sense)
}

// DataOut implements DataOuter with one SG_IO ioctl, errors as DataIn's.
func (d *Device) DataOut(cdb, data []byte) error {
	sense := make([]byte, senseSize)
	_, err := d.sgio(newSgIOHdrOut(cdb, data, sense, d.timeout()), cdb, data, sense)
	return err
}

// sgio makes the ioctl for h, whose buffers are cdb, data and sense.
func (d *Device) sgio(h *sgIOHdr, cdb, data, sense []byte) (int, error) {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), sgIO, uintptr(unsafe.Pointer(h)))
		if errno == unix.EINTR {
			continue
		}
		runtime.KeepAlive(cdb)
		runtime.KeepAlive(data)
		runtime.KeepAlive(sense)
		if errno != 0 {
			hint := ""
			if errno == unix.ENOTTY || errno == unix.EINVAL {
				hint = " (not a SCSI device)"
			}
			return 0, fmt.Errorf("%s: %w%s", opName(cdb[0]), os.NewSyscallError("ioctl SG_IO", errno), hint)
		}
		break
	}
	return h.result(cdb[0], sense)
}
