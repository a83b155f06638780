package lio

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"golang.org/x/sys/unix"
)

// checkOpenedDevice refuses (ErrConflict) a block storage object whose
// kernel holds another device than the node dev is now. The udev_path a
// saved configuration (targetcli's saveconfig.json) restores is only the
// path the object was opened by: a /dev/dm-N restored before lunferry's
// device exists opens whichever device holds that number then, and
// udev_path alone would match. iblock's info names the device it opened
// ("Major: M Minor: m"). Nothing to compare (no such node yet, an info
// without numbers) is not a conflict: the path check stands.
func (r *Root) checkOpenedDevice(e *StorageObjectInfo, dev string) error {
	info, err := r.readAttr(path.Join(e.Path, "info"))
	if err != nil {
		return errf("read %s: %w", r.rel(path.Join(e.Path, "info")), err)
	}
	return openedConflict(e, info, dev)
}

// openedConflict is checkOpenedDevice's test of the object's info text.
func openedConflict(e *StorageObjectInfo, info, dev string) error {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil || st.Rdev == 0 {
		return nil // no device node to compare with
	}
	major, minor := infoField(info, "Major"), infoField(info, "Minor")
	if major == "" || minor == "" {
		return nil
	}
	want := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	if got := major + ":" + minor; got != want {
		return fmt.Errorf("%w: storage object %s/%s holds device %s, but %s is %s now (restored from a saved configuration before the device was made?): tear down the export that uses it",
			ErrConflict, e.Backstore, e.Name, got, dev, want)
	}
	return nil
}

// holds reports whether block storage object so holds device dev: iblock
// opened dev's path and the device its node is now (openedConflict). A
// LIO restore of a saved configuration can bring lunferry's object back
// on a path that is another device now, or on another path altogether.
// One read of the object's info answers both: iblock reports there the
// path it opened ("UDEV PATH: p", given by the control parameter
// udev_path=) as well as the numbers. The udev_path attribute is not
// read: the kernel keeps it as a label for tools (lunferry writes it the
// same) and opens nothing by it.
func (r *Root) holds(so *StorageObjectInfo, dev string) (bool, error) {
	p := path.Join(so.Path, "info")
	info, err := r.readAttr(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed while we looked
	}
	if err != nil {
		return false, errf("read %s: %w", r.rel(p), err)
	}
	if infoField(info, "UDEV PATH") != dev {
		return false, nil
	}
	return openedConflict(so, info, dev) == nil, nil
}
