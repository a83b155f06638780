//go:build !linux

package plan

import (
	"context"
	"errors"
)

// errNoLoop: loop devices are Linux only.
var errNoLoop = errors.New("plan: loop devices are only available on linux")

// LoopMetadata makes dm-clone metadata devices from files; Linux only.
type LoopMetadata struct {
	// SysRoot is sysfs (empty: /sys).
	SysRoot string
	// DevRoot is the device directory (empty: /dev).
	DevRoot string
}

// CreateFile implements MetadataDevices.
func (LoopMetadata) CreateFile(context.Context, string, uint64, bool) (string, error) {
	return "", errNoLoop
}

// DetachFile implements MetadataDevices.
func (LoopMetadata) DetachFile(context.Context, string, bool) error { return errNoLoop }

// ZeroDevice implements MetadataDevices.
func (LoopMetadata) ZeroDevice(context.Context, string, uint64) error { return errNoLoop }
