// Package loop attaches files to loop devices without udev: it finds a
// file's loop device through sysfs (/sys/block/loopN/loop/backing_file),
// attaches one with the loop ioctls (LOOP_CTL_GET_FREE, LOOP_CONFIGURE,
// LOOP_CLR_FD) and makes /dev/loopN when it is missing. lunferry keeps
// dm-clone metadata in such files:
//
//	d := loop.Devices{}                             // /sys and /dev
//	dev, err := d.AttachFile(ctx, path, size, true) // sparse file, head zeroed, attached
//	err = d.DetachFile(path, true)                  // detached and deleted
//	err = loop.ZeroDevice(dev, minSize)             // a device the admin gives
//
// Every call can be repeated: attaching an attached file returns its
// device, detaching a detached or missing file succeeds.
package loop

import (
	"errors"
	"fmt"
)

// HeadBytes is how much of a file or device the zeroing clears: dm-clone
// then sees no superblock and formats fresh metadata.
const HeadBytes = 4096

// ErrNotImplemented: loop devices are Linux only.
var ErrNotImplemented = errors.New("loop: loop devices are only available on linux")

// Devices finds, attaches and detaches the loop devices of backing files.
type Devices struct {
	// SysRoot is sysfs (empty: /sys).
	SysRoot string
	// DevRoot is the device directory (empty: /dev).
	DevRoot string
}

// TooSmallError is ZeroDevice's refusal of a device smaller than asked.
type TooSmallError struct {
	// Device is the device's path.
	Device string
	// Size is what it holds and Need what was asked, in bytes.
	Size, Need uint64
}

// ShortFileError: a file to attach again is shorter than it was made.
type ShortFileError struct {
	Path       string
	Size, Want uint64
}

func (e *ShortFileError) Error() string {
	return fmt.Sprintf("loop: %s is %d bytes, shorter than its %d", e.Path, e.Size, e.Want)
}

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("loop: %s holds %d bytes, %d needed", e.Device, e.Size, e.Need)
}

// Find returns the loop device backed by the file at path (absolute).
func (d Devices) Find(path string) (dev string, ok bool, err error) {
	return d.View().Find(path)
}

// View is the attached loop devices as one scan of sysfs finds them, for
// a pass of lookups over many volumes (one `migrate status`): every
// device's backing file is read once, at the first lookup, instead of
// once per lookup. It does not see attachments after that: make one per
// pass, never keep one. It is not safe for concurrent use.
type View struct {
	d Devices
	// files maps a backing file to its loop device number; nil until
	// scanned.
	files map[string]int
	err   error
}

// View returns a view of d's loop devices, scanned at its first lookup.
func (d Devices) View() *View { return &View{d: d} }

// Find returns the loop device backed by the file at path (absolute), as
// the scan found it; its node is made when missing.
func (v *View) Find(path string) (dev string, ok bool, err error) {
	if v.files == nil && v.err == nil {
		v.files, v.err = v.d.scan()
	}
	if v.err != nil {
		return "", false, v.err
	}
	n, ok := v.files[path]
	if !ok {
		return "", false, nil
	}
	dev, err = v.d.node(n)
	return dev, err == nil, err
}
