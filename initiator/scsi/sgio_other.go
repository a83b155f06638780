//go:build !linux

package scsi

// Open is not implemented off Linux.
func Open(string) (*Device, error) { return nil, ErrNotImplemented }

// DataIn is not implemented off Linux.
func (d *Device) DataIn([]byte, []byte) (int, error) { return 0, ErrNotImplemented }

// DataOut is not implemented off Linux.
func (d *Device) DataOut([]byte, []byte) error { return ErrNotImplemented }
