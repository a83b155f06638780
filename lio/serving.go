package lio

import (
	"errors"
	"io/fs"
	"path"
	"slices"
)

// Serves reports whether g is enabled and maps a LUN over block storage
// object name, holding device dev (see holds), to initiator's ACL: what
// a host needs to see the right disk through the target. It reads only
// that (g's enable, its LUNs' storage object links, that object's
// udev_path and info, the ACL's mapped LUN links), so that a status of
// many exports stays cheap; Describe reads the whole target. A missing
// target, TPG or ACL is false, not an error.
func (g TPG) Serves(name, dev, initiator string) (bool, error) {
	r := g.Target.root
	en, err := r.readAttr(path.Join(g.Path(), "enable"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, errf("read enable of tpg %s: %w", g, err)
	}
	if en != "1" {
		return false, nil
	}
	luns, err := g.LUNs()
	if err != nil {
		return false, err
	}
	var over []uint64
	var so *StorageObjectInfo
	for _, l := range luns {
		s, _, err := l.StorageObject()
		if err != nil {
			return false, err
		}
		if s != nil && s.Backstore == BackstoreBlock && s.Name == name {
			over, so = append(over, l.Index), s
		}
	}
	if so == nil {
		return false, nil
	}
	if ok, err := r.holds(so, dev); !ok || err != nil {
		return false, err
	}
	mapped, err := g.NodeACL(initiator).MappedLUNs()
	if err != nil {
		return false, err
	}
	for _, m := range mapped {
		idx, _, ok, err := m.TPGLUN()
		if err != nil {
			return false, errf("read mapped lun %d of %s: %w", m.Index, initiator, err)
		}
		if ok && slices.Contains(over, idx) {
			return true, nil
		}
	}
	return false, nil
}
