//go:build !linux

package loop

import "context"

// AttachFile is not implemented off Linux.
func (Devices) AttachFile(context.Context, string, uint64, bool) (string, error) {
	return "", ErrNotImplemented
}

// AttachExisting is not implemented off Linux.
func (Devices) AttachExisting(context.Context, string, uint64) (string, error) {
	return "", ErrNotImplemented
}

// ReadHead is not implemented off Linux.
func ReadHead(string, int) ([]byte, error) { return nil, ErrNotImplemented }

func (Devices) scan() (map[string]int, error) { return nil, ErrNotImplemented }

func (Devices) node(int) (string, error) { return "", ErrNotImplemented }

// DetachFile is not implemented off Linux.
func (Devices) DetachFile(string, bool) error { return ErrNotImplemented }

// ZeroDevice is not implemented off Linux.
func ZeroDevice(string, uint64) error { return ErrNotImplemented }
