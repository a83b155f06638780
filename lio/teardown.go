package lio

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"

	"golang.org/x/sys/unix"
)

// TeardownOptions modify Teardown.
type TeardownOptions struct {
	// Force tears the target down even while initiators are logged in:
	// disabling the TPG drops their sessions and their I/O fails.
	Force bool
	// KeepStorageObjects leaves the storage objects the target exported
	// in place (for re-export under another target).
	KeepStorageObjects bool
	// StorageObjects names lunferry storage objects to delete as well,
	// even when the target is already gone: a teardown interrupted after
	// removing the target but before its storage objects leaves them
	// behind, and the target no longer says which they were. Objects a
	// LUN still uses are left alone. Ignored with KeepStorageObjects.
	StorageObjects []string
}

// Teardown removes the lunferry target iqn in reverse order of Apply:
// disable each TPG, then mapped LUNs and ACLs, LUNs, portals, the TPG, the
// target, and finally the lunferry storage objects its LUNs exported (and
// their HBA directories), unless another LUN still uses them.
//
// It refuses a target lunferry does not own (ErrNotOwned) and, unless
// opts.Force is set, a target with logged-in initiators
// (*SessionsActiveError). Tearing down a missing target succeeds, so a
// teardown interrupted halfway can simply be run again.
func (r *Root) Teardown(ctx context.Context, iqn string, opts TeardownOptions) error {
	for _, n := range opts.StorageObjects {
		if err := ValidateStorageObjectName(n); err != nil {
			return errf("teardown %s: %w: %v", iqn, ErrNotOwned, err)
		}
	}
	tg := r.Target(iqn)
	exists, err := tg.Exists()
	if err != nil {
		return errf("stat target %s: %w", iqn, err)
	}
	if exists {
		if err := r.checkTeardown(tg, opts.Force); err != nil {
			return err
		}
		sos, err := r.removeTarget(ctx, tg)
		if err != nil {
			return err
		}
		if opts.KeepStorageObjects {
			return nil
		}
		for _, so := range sos {
			if !so.Owned {
				continue
			}
			if err := r.removeUnused(ctx, so); err != nil {
				return errf("teardown %s: %w", iqn, err)
			}
		}
	}
	return r.deleteNamedStorageObjects(ctx, iqn, opts)
}

// checkTeardown refuses a target lunferry does not own and, unless force
// is set, one with logged-in initiators.
func (r *Root) checkTeardown(tg Target, force bool) error {
	owned, why, err := tg.Owned()
	if err != nil {
		return err
	}
	if !owned {
		return errf("teardown %s: %w (%s); lunferry leaves it alone", tg.IQN, ErrNotOwned, why)
	}
	if force {
		return nil
	}
	ss, err := r.Sessions(tg.IQN)
	if err != nil {
		return err
	}
	if len(ss) > 0 {
		return &SessionsActiveError{TargetIQN: tg.IQN, Sessions: ss}
	}
	return nil
}

// removeTarget removes tg's TPGs, then tg itself, and returns the storage
// objects its LUNs exported.
func (r *Root) removeTarget(ctx context.Context, tg Target) ([]*StorageObjectInfo, error) {
	tpgs, err := tg.TPGs()
	if err != nil {
		return nil, err
	}
	var sos []*StorageObjectInfo
	for _, g := range tpgs {
		s, err := r.removeTPG(ctx, g)
		if err != nil {
			return nil, errf("teardown %s: %w", tg.IQN, err)
		}
		sos = append(sos, s...)
	}
	if err := r.rmdir(ctx, tg.Path(), "target "+tg.IQN); err != nil {
		return nil, errf("teardown %s: %w", tg.IQN, err)
	}
	return sos, nil
}

// deleteNamedStorageObjects removes opts.StorageObjects, whatever their
// backstore, leaving those still in use.
func (r *Root) deleteNamedStorageObjects(ctx context.Context, iqn string, opts TeardownOptions) error {
	if opts.KeepStorageObjects || len(opts.StorageObjects) == 0 {
		return nil
	}
	all, err := r.StorageObjects()
	if err != nil {
		return errf("teardown %s: %w", iqn, err)
	}
	for _, n := range opts.StorageObjects {
		for i := range all {
			if all[i].Name != n {
				continue
			}
			if err := r.removeUnused(ctx, &all[i]); err != nil {
				return errf("teardown %s: %w", iqn, err)
			}
		}
	}
	return nil
}

// removeUnused removes the storage object so unless a LUN still exports
// it (EBUSY) or it is already gone.
func (r *Root) removeUnused(ctx context.Context, so *StorageObjectInfo) error {
	err := r.removeStorageObject(ctx, so)
	if errors.Is(err, unix.EBUSY) || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// removeTPG disables g and removes its ACLs, LUNs and portals, then g
// itself, in the order the kernel needs. It returns the storage objects
// the LUNs exported.
func (r *Root) removeTPG(ctx context.Context, g TPG) ([]*StorageObjectInfo, error) {
	if err := g.SetEnabled(false); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := removeEach(ctx, g.NodeACLs, r.removeACL); err != nil {
		return nil, err
	}
	luns, err := g.LUNs()
	if err != nil {
		return nil, err
	}
	var sos []*StorageObjectInfo
	for _, l := range luns {
		so, err := r.removeLUN(ctx, l)
		if err != nil {
			return nil, err
		}
		if so != nil {
			sos = append(sos, so)
		}
	}
	if err := removeEach(ctx, g.NetworkPortals, r.removePortal); err != nil {
		return nil, err
	}
	if err := r.rmdir(ctx, g.Path(), "tpg "+g.String()); err != nil {
		return nil, err
	}
	return sos, nil
}

// removeACL removes a's mapped LUNs, then a.
func (r *Root) removeACL(ctx context.Context, a NodeACL) error {
	if err := removeEach(ctx, a.MappedLUNs, r.removeMappedLUN); err != nil {
		return err
	}
	return r.rmdir(ctx, a.Path(), "acl "+a.InitiatorIQN)
}

// removeMappedLUN unlinks m from its TPG LUN and removes it.
func (r *Root) removeMappedLUN(ctx context.Context, m MappedLUN) error {
	if err := r.unlinkAll(ctx, m.Path()); err != nil {
		return err
	}
	return r.rmdir(ctx, m.Path(), fmt.Sprintf("mapped lun %d of %s", m.Index, m.ACL.InitiatorIQN))
}

// removeLUN removes a TPG LUN (its mapped LUNs must be gone) and returns
// the storage object it exported, if any.
func (r *Root) removeLUN(ctx context.Context, l LUN) (*StorageObjectInfo, error) {
	so, _, err := l.StorageObject()
	if err != nil {
		return nil, err
	}
	if err := r.unlinkAll(ctx, l.Path()); err != nil {
		return nil, err
	}
	if err := r.rmdir(ctx, l.Path(), "lun "+strconv.FormatUint(l.Index, 10)); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, errf("%w: an ACL outside lunferry's configuration still maps it", err)
		}
		return nil, err
	}
	return so, nil
}

// removePortal removes the portal np.
func (r *Root) removePortal(ctx context.Context, np NetworkPortal) error {
	return r.rmdir(ctx, np.Path(), "portal "+np.Addr.String())
}

// prune removes, with remove, every object list returns that keep does
// not accept: what a configuration no longer lists.
func prune[T any](ctx context.Context, list func() ([]T, error), keep func(T) bool, remove func(context.Context, T) error) error {
	have, err := list()
	if err != nil {
		return err
	}
	for _, x := range have {
		if keep(x) {
			continue
		}
		if err := remove(ctx, x); err != nil {
			return err
		}
	}
	return nil
}

// removeEach removes, with remove, every object list returns.
func removeEach[T any](ctx context.Context, list func() ([]T, error), remove func(context.Context, T) error) error {
	return prune(ctx, list, func(T) bool { return false }, remove)
}

// rmdir removes a configfs group, tolerating its absence.
func (r *Root) rmdir(ctx context.Context, p, what string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.fs().Rmdir(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errf("remove %s (%s): %w", what, r.rel(p), err)
	}
	return nil
}

// unlinkAll removes every symlink in dir.
func (r *Root) unlinkAll(ctx context.Context, dir string) error {
	links, err := r.listLinks(dir)
	if err != nil {
		return errf("list %s: %w", r.rel(dir), err)
	}
	for _, l := range links {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.fs().Remove(path.Join(dir, l)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errf("unlink %s: %w", r.rel(path.Join(dir, l)), err)
		}
	}
	return nil
}
