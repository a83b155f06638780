package dm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// readDevFile reads a sysfs "dev" file ("MAJ:MIN\n").
func readDevFile(path string) (DevNum, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return DevNum{}, err
	}
	d, err := ParseDevNum(strings.TrimSpace(string(b)))
	if err != nil {
		return DevNum{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// ParseDevNum parses "MAJ:MIN".
func ParseDevNum(s string) (DevNum, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return DevNum{}, fmt.Errorf("dm: %q is not MAJ:MIN", s)
	}
	maj, err := strconv.ParseUint(a, 10, 32)
	if err != nil {
		return DevNum{}, fmt.Errorf("dm: %q is not MAJ:MIN: %w", s, err)
	}
	minor, err := strconv.ParseUint(b, 10, 32)
	if err != nil {
		return DevNum{}, fmt.Errorf("dm: %q is not MAJ:MIN: %w", s, err)
	}
	return DevNum{Major: uint32(maj), Minor: uint32(minor)}, nil
}

// devNumOf resolves a table device argument: MAJ:MIN as is, a path
// through stat (it must be a block device).
func devNumOf(dev string) (DevNum, error) {
	if !strings.HasPrefix(dev, "/") {
		return ParseDevNum(dev)
	}
	kind, d, err := statNode(dev)
	if err != nil {
		return DevNum{}, err
	}
	switch kind {
	case nodeMissing:
		return DevNum{}, fmt.Errorf("%s does not exist", dev)
	case nodeBlock:
		return d, nil
	}
	return DevNum{}, fmt.Errorf("%s is not a block device", dev)
}

// deviceSize reads a block device's size from sysfs
// (SysRoot/dev/block/MAJ:MIN/size, always in 512-byte sectors).
func (c *Client) deviceSize(dev string) (Sectors, error) {
	d, err := devNumOf(dev)
	if err != nil {
		return 0, err
	}
	p := filepath.Join(c.opts.SysRoot, "dev", "block", d.String(), "size")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("read size of %s: %w", d, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	return Sectors(n), nil
}

// SysfsName returns the kernel name of a dm device ("dm-3") from
// SysRoot/dev/block/MAJ:MIN, checking SysRoot/block/dm-N/dm/name matches.
func (c *Client) sysfsName(name string, d DevNum) (string, error) {
	link, err := os.Readlink(filepath.Join(c.opts.SysRoot, "dev", "block", d.String()))
	if err != nil {
		return "", fmt.Errorf("dm: find %s (%s) in sysfs: %w", name, d, err)
	}
	kname := filepath.Base(link)
	b, err := os.ReadFile(filepath.Join(c.opts.SysRoot, "block", kname, "dm", "name"))
	if err != nil {
		return "", fmt.Errorf("dm: find %s (%s) in sysfs: %w", name, d, err)
	}
	if got := strings.TrimSpace(string(b)); got != name {
		return "", fmt.Errorf("dm: sysfs %s is device %q, not %q", kname, got, name)
	}
	return kname, nil
}

// udevRunning reports whether udev manages /dev (its control socket exists).
func (c *Client) udevRunning() bool {
	_, err := os.Stat(filepath.Join(c.opts.RunRoot, "udev", "control"))
	return err == nil
}

// DevicePath returns a block device path for the named device, with or
// without udev.
//
// Without udev (the lab guest, minimal appliances) it returns
// /dev/mapper/NAME, making that node with mknod from the device number the
// kernel reports and sysfs confirms (SysRoot/dev/block/MAJ:MIN ->
// dm-N, SysRoot/block/dm-N/dm/name); a stale node of the same name (left
// by a removed device) is replaced.
//
// With udev running it never makes nodes (a node would block udev's
// symlink): it waits up to Options.UdevWait for udev's /dev/mapper/NAME and
// otherwise returns the kernel's own node /dev/dm-N (devtmpfs).
func (c *Client) DevicePath(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return "", fmt.Errorf("dm: device path: bad device name %q", name)
	}
	info, err := c.Info(context.Background(), name)
	if err != nil {
		return "", fmt.Errorf("dm: device path: %w", err)
	}
	kname, err := c.sysfsName(name, info.Dev)
	if err != nil {
		return "", err
	}
	p := filepath.Join(c.opts.DevRoot, "mapper", name)
	if c.udevRunning() {
		return c.udevPath(p, kname, info.Dev)
	}
	for attempt := 0; attempt < 3; attempt++ {
		kind, d, err := statNode(p)
		if err != nil {
			return "", fmt.Errorf("dm: device path %s: %w", p, err)
		}
		switch {
		case kind == nodeBlock && d == info.Dev:
			return p, nil
		case kind == nodeMissing:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", fmt.Errorf("dm: device path: %w", err)
			}
			err := mknod(p, true, info.Dev)
			if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: udev was quicker; look again
				return "", fmt.Errorf("dm: make node %s (%s): %w", p, info.Dev, err)
			}
		case isSymlink(p):
			// udev owns it and will fix it; the kernel's own node is right.
			kp := filepath.Join(c.opts.DevRoot, kname)
			if k, kd, err := statNode(kp); err == nil && k == nodeBlock && kd == info.Dev {
				return kp, nil
			}
			return "", fmt.Errorf("dm: %s is a stale udev link and %s is missing; run \"udevadm trigger\" or remove the link", p, kp)
		default:
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("dm: replace stale node %s: %w", p, err)
			}
		}
	}
	return "", fmt.Errorf("dm: device path %s: node keeps changing under us (udev?); retry", p)
}

// udevPath waits for udev's node p, then falls back to DevRoot/kname.
func (c *Client) udevPath(p, kname string, d DevNum) (string, error) {
	deadline := time.Now().Add(c.opts.UdevWait)
	for {
		if k, nd, err := statNode(p); err == nil && k == nodeBlock && nd == d {
			return p, nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	kp := filepath.Join(c.opts.DevRoot, kname)
	if k, nd, err := statNode(kp); err == nil && k == nodeBlock && nd == d {
		return kp, nil
	}
	return "", fmt.Errorf("dm: udev runs but made neither %s nor %s for device %s within %s; check \"udevadm monitor\" and the dm udev rules",
		p, kp, d, c.opts.UdevWait)
}

// removeNode removes /dev/mapper/NAME after the device is gone if it is a
// node (not udev's symlink) for the removed device number.
func (c *Client) removeNode(name string, d DevNum) {
	p := filepath.Join(c.opts.DevRoot, "mapper", name)
	if isSymlink(p) {
		return
	}
	if kind, nd, err := statNode(p); err == nil && kind == nodeBlock && nd == d {
		_ = os.Remove(p)
	}
}
