package lio

import (
	"errors"
	"io/fs"
	"path"
	"slices"

	"golang.org/x/sys/unix"
)

// Serves reports whether g is enabled and maps a LUN over block storage
// object name, holding device dev (see holds), to initiator's ACL: what
// a host needs to see the right disk through the target. It reads only
// that (g's enable, its LUN list, the links of its LUNs, that object's
// info, the ACL's mapped LUNs and their links), so that a status of many
// exports stays cheap; Describe reads the whole target. A link is first
// looked for where an Export makes it, named after the storage object (a
// mapped LUN at its TPG LUN's index): a readlink, where listing the
// directory is another open; a link made otherwise (a configuration
// restored by another tool, a mapping at another index) is found by the
// listing. A missing target, TPG or ACL is false, not an error.
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
		s, err := l.storageObjectNamed(name)
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
	// An Export maps its LUN to the host at the LUN's own index, the
	// link named after the storage object: look there first.
	acl := g.NodeACL(initiator)
	for _, idx := range over {
		dst, ok, err := r.linkAt(path.Join(acl.MappedLUN(idx).Path(), name))
		if err != nil {
			return false, errf("read mapped lun %d of %s: %w", idx, initiator, err)
		}
		if i, isLUN := parseIndex(path.Base(dst)); ok && isLUN && slices.Contains(over, i) {
			return true, nil
		}
	}
	mapped, err := acl.MappedLUNs()
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

// storageObjectNamed is StorageObject for a LUN whose link lunferry
// named after the storage object (an Export does so, and applyLUN by
// default): a readlink of that name, else the listing.
func (l LUN) storageObjectNamed(name string) (*StorageObjectInfo, error) {
	r := l.TPG.Target.root
	dst, ok, err := r.linkAt(path.Join(l.Path(), name))
	if err != nil {
		return nil, errf("read lun %d of tpg %s: %w", l.Index, l.TPG, err)
	}
	if ok {
		return r.storageObjectByPath(dst)
	}
	so, _, err := l.StorageObject()
	return so, err
}

// linkAt resolves the symlink at p; ok is false when p is not there or
// is not a symlink.
func (r *Root) linkAt(p string) (string, bool, error) {
	dst, err := r.resolveLink(p)
	switch {
	case err == nil:
		return dst, true, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.EINVAL):
		return "", false, nil
	}
	return "", false, err
}
