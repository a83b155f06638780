package scsi

import (
	"os"
	"time"
)

// Device is an open SCSI disk (/dev/sdX) that commands reach through
// the SG_IO ioctl. It implements Commander.
type Device struct {
	// Timeout bounds each command; 0 means DefaultTimeout.
	Timeout time.Duration
	f       *os.File
}

// Close closes the device.
func (d *Device) Close() error { return d.f.Close() }

func (d *Device) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultTimeout
}
