package lio

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ensureFabric creates the iscsi fabric directory if it is missing (the
// kernel then registers iscsi_target_mod's fabric). It is shared with
// every other iSCSI target, so it is never removed.
func (r *Root) ensureFabric(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ok, err := r.exists(r.fabricPath())
	if err != nil {
		return errf("stat %s: %w", r.fabricPath(), err)
	}
	if ok {
		return nil
	}
	if err := r.fs().Mkdir(r.fabricPath()); err != nil && !errors.Is(err, fs.ErrExist) {
		return errf("create iscsi fabric %s: %w (is iscsi_target_mod loaded?)", r.fabricPath(), err)
	}
	return nil
}

// applyTarget makes target tc exist as described. soPaths maps the
// "/backstores/<plugin>/<name>" names used by the LUNs to configfs paths.
func (r *Root) applyTarget(ctx context.Context, t *tx, tc TargetConfig, soPaths map[string]string) error {
	if tc.Fabric != "" && tc.Fabric != fabricISCSI {
		return fmt.Errorf("%w: target %s: fabric %q is not supported (iscsi only)", ErrInvalidConfig, tc.WWN, tc.Fabric)
	}
	if err := ValidateIQN(tc.WWN); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if err := r.ensureFabric(ctx); err != nil {
		return err
	}
	tg := r.Target(tc.WWN)
	exists, err := tg.Exists()
	if err != nil {
		return errf("stat target %s: %w", tc.WWN, err)
	}
	if exists {
		owned, why, err := tg.Owned()
		if err != nil {
			return err
		}
		if !owned {
			return fmt.Errorf("lio: target %s: %w (%s): choose another target IQN, or remove that target with targetcli if it is no longer used", tc.WWN, ErrNotOwned, why)
		}
	} else if err := t.mkdir(ctx, tg.Path()); err != nil {
		return errf("create target %s: %w", tc.WWN, err)
	}

	want := map[uint16]bool{}
	for _, gc := range tc.TPGs {
		want[gc.Tag] = true
		if err := r.applyTPG(ctx, t, tg.TPG(gc.Tag), gc, soPaths); err != nil {
			return err
		}
	}
	// TPGs of this (owned) target that the config no longer has.
	have, err := tg.TPGs()
	if err != nil {
		return err
	}
	for _, g := range have {
		if !want[g.Tag] {
			if _, err := r.removeTPG(ctx, g); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Root) applyTPG(ctx context.Context, t *tx, g TPG, gc TPGConfig, soPaths map[string]string) error {
	alias := gc.Parameters["TargetAlias"]
	if !strings.HasPrefix(alias, NamePrefix) {
		return fmt.Errorf("lio: tpg %s: %w: its TargetAlias %q does not start with %q, so lunferry would not recognise it as its own", g, ErrNotOwned, alias, NamePrefix)
	}
	// Secure defaults: an initiator without an ACL never gets in, and a
	// demo-mode session could never write.
	secure := map[string]string{"generate_node_acls": "0", "demo_mode_write_protect": "1", "cache_dynamic_acls": "0"}
	for k, v := range secure {
		if got, ok := gc.Attributes[k]; ok && got != v {
			return fmt.Errorf("lio: tpg %s: %w: attribute %s=%s would let initiators without an ACL in; lunferry always uses %s=%s", g, ErrInvalidConfig, k, got, k, v)
		}
	}
	chap := false
	for _, a := range gc.NodeACLs {
		if a.ChapUserID != "" || a.ChapPassword != "" {
			chap = true
		}
	}
	attrs := map[string]string{}
	for k, v := range gc.Attributes {
		attrs[k] = v
	}
	for k, v := range secure {
		attrs[k] = v
	}
	if chap {
		attrs["authentication"] = "1"
	} else if _, ok := attrs["authentication"]; !ok {
		attrs["authentication"] = "0"
	}

	exists, err := r.exists(g.Path())
	if err != nil {
		return errf("stat tpg %s: %w", g, err)
	}
	if !exists {
		if err := t.mkdir(ctx, g.Path()); err != nil {
			return errf("create tpg %s: %w", g, err)
		}
	}
	// The ownership mark first, so that an interrupted apply leaves a
	// TPG lunferry can recognise and clean up.
	params := map[string]string{}
	for k, v := range gc.Parameters {
		params[k] = v
	}
	if err := r.updateParams(g, params); err != nil {
		return err
	}
	if err := r.updateAttrs(path.Join(g.Path(), "attrib"), attrs); err != nil {
		return errf("tpg %s: %w", g, err)
	}

	// LUNs.
	wantLUN := map[uint64]bool{}
	for _, lc := range gc.LUNs {
		wantLUN[lc.Index] = true
		if err := r.applyLUN(ctx, t, g, lc, soPaths); err != nil {
			return err
		}
	}
	// Portals.
	wantNP := map[netip.AddrPort]bool{}
	for _, pc := range gc.Portals {
		a, err := netip.ParseAddr(strings.Trim(pc.IPAddress, "[]"))
		if err != nil {
			return fmt.Errorf("lio: tpg %s: %w: portal address %q: %v", g, ErrInvalidName, pc.IPAddress, err)
		}
		ap := netip.AddrPortFrom(a.Unmap(), pc.Port)
		wantNP[ap] = true
		if err := r.applyPortal(ctx, t, g, ap); err != nil {
			return err
		}
	}
	// ACLs.
	wantACL := map[string]bool{}
	for _, ac := range gc.NodeACLs {
		wantACL[ac.NodeWWN] = true
		if err := r.applyACL(ctx, t, g, ac); err != nil {
			return err
		}
	}

	// Converge: remove what the config no longer lists (ACLs first: their
	// mapped LUNs pin the TPG LUNs).
	acls, err := g.NodeACLs()
	if err != nil {
		return err
	}
	for _, a := range acls {
		if !wantACL[a.InitiatorIQN] {
			if err := r.removeACL(ctx, a); err != nil {
				return err
			}
		}
	}
	nps, err := g.NetworkPortals()
	if err != nil {
		return err
	}
	for _, np := range nps {
		if !wantNP[netip.AddrPortFrom(np.Addr.Addr().Unmap(), np.Addr.Port())] {
			if err := r.rmdir(ctx, np.Path(), "portal "+np.Addr.String()); err != nil {
				return err
			}
		}
	}
	luns, err := g.LUNs()
	if err != nil {
		return err
	}
	for _, l := range luns {
		if !wantLUN[l.Index] {
			if _, err := r.removeLUN(ctx, l); err != nil {
				return err
			}
		}
	}

	// Enable last, when every ACL is in place.
	en, err := g.Enabled()
	if err != nil {
		return err
	}
	if gc.Enable && !en {
		if err := g.SetEnabled(true); err != nil {
			return err
		}
		t.onUndo("disable tpg "+g.String(), func() error { return g.SetEnabled(false) })
	} else if !gc.Enable && en {
		if err := g.SetEnabled(false); err != nil {
			return err
		}
	}
	return nil
}

func (r *Root) updateParams(g TPG, params map[string]string) error {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// TargetAlias first: it is the ownership mark.
	sort.SliceStable(keys, func(i, j int) bool { return keys[i] == "TargetAlias" && keys[j] != "TargetAlias" })
	for _, k := range keys {
		if strings.ContainsAny(k, "/ \n") || strings.Contains(params[k], "\n") {
			return fmt.Errorf("lio: tpg %s: %w: parameter %q", g, ErrInvalidConfig, k)
		}
		have, err := g.Parameter(k)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("lio: tpg %s: %w: no parameter %s", g, ErrInvalidConfig, k)
		}
		if err == nil && have == params[k] {
			continue
		}
		if err := g.SetParameter(k, params[k]); err != nil {
			return err
		}
	}
	return nil
}

func (r *Root) applyLUN(ctx context.Context, t *tx, g TPG, lc LUNConfig, soPaths map[string]string) error {
	if lc.Index > maxLUN {
		return fmt.Errorf("lio: tpg %s: %w: LUN %d above %d", g, ErrInvalidConfig, lc.Index, maxLUN)
	}
	soPath, ok := soPaths[lc.StorageObject]
	if !ok {
		return fmt.Errorf("lio: tpg %s lun %d: %w: storage object %s is not part of this configuration", g, lc.Index, ErrInvalidConfig, lc.StorageObject)
	}
	l := g.LUN(lc.Index)
	exists, err := r.exists(l.Path())
	if err != nil {
		return errf("stat lun %d of tpg %s: %w", lc.Index, g, err)
	}
	if exists {
		so, _, err := l.StorageObject()
		if err != nil {
			return err
		}
		if so != nil {
			if so.Path != soPath {
				return fmt.Errorf("lio: tpg %s lun %d: %w: it exports %s/%s, not %s: tear down the export first", g, lc.Index, ErrConflict, so.Backstore, so.Name, lc.StorageObject)
			}
			return nil
		}
	} else if err := t.mkdir(ctx, l.Path()); err != nil {
		return errf("create lun %d of tpg %s: %w", lc.Index, g, err)
	}
	alias := lc.Alias
	if alias == "" || strings.ContainsAny(alias, "/ \n") {
		alias = path.Base(soPath)
	}
	if err := t.symlink(ctx, soPath, path.Join(l.Path(), alias)); err != nil {
		hint := ""
		if errors.Is(err, unix.ENODEV) {
			hint = " (the storage object is not enabled)"
		}
		return errf("link lun %d of tpg %s to %s: %w%s", lc.Index, g, r.rel(soPath), err, hint)
	}
	return nil
}

func (r *Root) applyPortal(ctx context.Context, t *tx, g TPG, ap netip.AddrPort) error {
	np := g.NetworkPortal(ap)
	// The kernel may have listed the portal under another spelling of the
	// same address; compare by value.
	nps, err := g.NetworkPortals()
	if err != nil {
		return err
	}
	for _, have := range nps {
		if have.Addr.Addr().Unmap() == ap.Addr() && have.Addr.Port() == ap.Port() {
			return nil
		}
	}
	if err := t.mkdir(ctx, np.Path()); err != nil {
		hint := ""
		if errors.Is(err, unix.EADDRINUSE) {
			hint = ": another service (or another LIO TPG) listens there; pick another address or port"
		} else if errors.Is(err, unix.EADDRNOTAVAIL) {
			hint = ": the address is not on a local interface"
		}
		return errf("create portal %s on tpg %s: %w%s", ap, g, err, hint)
	}
	return nil
}

func (r *Root) applyACL(ctx context.Context, t *tx, g TPG, ac NodeACLConfig) error {
	if err := ValidateIQN(ac.NodeWWN); err != nil {
		return wrap(err, "tpg %s acl", g)
	}
	a := g.NodeACL(ac.NodeWWN)
	exists, err := r.exists(a.Path())
	if err != nil {
		return errf("stat acl %s: %w", ac.NodeWWN, err)
	}
	if !exists {
		if err := t.mkdir(ctx, a.Path()); err != nil {
			return errf("create acl %s on tpg %s: %w", ac.NodeWWN, g, err)
		}
	}
	var c *CHAP
	if ac.ChapUserID != "" || ac.ChapPassword != "" || ac.ChapMutualUserID != "" || ac.ChapMutualPassword != "" {
		c = &CHAP{UserID: ac.ChapUserID, Password: ac.ChapPassword, MutualUserID: ac.ChapMutualUserID, MutualPassword: ac.ChapMutualPassword}
		if err := c.Validate(); err != nil {
			return wrap(err, "acl %s", ac.NodeWWN)
		}
	}
	if err := a.SetCHAP(c); err != nil {
		return err
	}
	if err := r.updateAttrs(path.Join(a.Path(), "attrib"), ac.Attributes); err != nil {
		return errf("acl %s: %w", ac.NodeWWN, err)
	}
	want := map[uint64]bool{}
	for _, mc := range ac.MappedLUNs {
		want[mc.Index] = true
		if err := r.applyMappedLUN(ctx, t, a, mc); err != nil {
			return err
		}
	}
	have, err := a.MappedLUNs()
	if err != nil {
		return err
	}
	for _, m := range have {
		if !want[m.Index] {
			if err := r.removeMappedLUN(ctx, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Root) applyMappedLUN(ctx context.Context, t *tx, a NodeACL, mc MappedLUNConfig) error {
	if mc.Index > maxMappedLUN {
		return fmt.Errorf("lio: acl %s: %w: mapped LUN %d above %d", a.InitiatorIQN, ErrInvalidConfig, mc.Index, maxMappedLUN)
	}
	m := a.MappedLUN(mc.Index)
	exists, err := r.exists(m.Path())
	if err != nil {
		return errf("stat mapped lun %d of %s: %w", mc.Index, a.InitiatorIQN, err)
	}
	linked := false
	if exists {
		idx, _, ok, err := m.TPGLUN()
		if err != nil {
			return errf("read mapped lun %d of %s: %w", mc.Index, a.InitiatorIQN, err)
		}
		if ok && idx != mc.TPGLUN {
			return fmt.Errorf("lio: acl %s mapped lun %d: %w: it maps tpg lun %d, not %d: tear down the export first", a.InitiatorIQN, mc.Index, ErrConflict, idx, mc.TPGLUN)
		}
		linked = ok
	} else if err := t.mkdir(ctx, m.Path()); err != nil {
		return errf("create mapped lun %d for %s: %w", mc.Index, a.InitiatorIQN, err)
	}
	if !linked {
		if err := r.linkMappedLUN(ctx, t, m, mc); err != nil {
			return err
		}
	}
	// The kernel keeps write_protect in the mapping the link creates: it
	// can only be read and changed once the link exists.
	return m.SetWriteProtect(mc.WriteProtect)
}

// linkMappedLUN links m to its TPG LUN. The kernel creates the mapping
// read-only if the TPG's prod_mode_write_protect is set at that moment
// (target_fabric_mappedlun_link), and a write to write_protect before the
// link is lost; so a read-only mapping is linked with
// prod_mode_write_protect=1, put back right after, and is never writable,
// not even for an instant.
func (r *Root) linkMappedLUN(ctx context.Context, t *tx, m MappedLUN, mc MappedLUNConfig) (err error) {
	a := m.ACL
	if mc.WriteProtect {
		prev, err := a.TPG.Attribute("prod_mode_write_protect")
		if err != nil {
			return errf("read prod_mode_write_protect of tpg %s: %w", a.TPG, err)
		}
		if prev != "1" {
			if prev == "" {
				prev = "0" // a dry run's pretended TPG: the kernel's default
			}
			if err := a.TPG.SetAttribute("prod_mode_write_protect", "1"); err != nil {
				return err
			}
			defer func() {
				if rerr := a.TPG.SetAttribute("prod_mode_write_protect", prev); rerr != nil && err == nil {
					err = rerr
				}
			}()
		}
	}
	alias := mc.Alias
	if alias == "" || strings.ContainsAny(alias, "/ \n") {
		alias = "lun"
	}
	tpgLUN := a.TPG.LUN(mc.TPGLUN).Path()
	if err := t.symlink(ctx, tpgLUN, path.Join(m.Path(), alias)); err != nil {
		return errf("map lun %d for %s to tpg lun %d: %w", mc.Index, a.InitiatorIQN, mc.TPGLUN, err)
	}
	return nil
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

func (r *Root) removeMappedLUN(ctx context.Context, m MappedLUN) error {
	if err := r.unlinkAll(ctx, m.Path()); err != nil {
		return err
	}
	return r.rmdir(ctx, m.Path(), fmt.Sprintf("mapped lun %d of %s", m.Index, m.ACL.InitiatorIQN))
}

func (r *Root) removeACL(ctx context.Context, a NodeACL) error {
	ms, err := a.MappedLUNs()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := r.removeMappedLUN(ctx, m); err != nil {
			return err
		}
	}
	return r.rmdir(ctx, a.Path(), "acl "+a.InitiatorIQN)
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
			return nil, fmt.Errorf("%w: an ACL outside lunferry's configuration still maps it", err)
		}
		return nil, err
	}
	return so, nil
}

// removeTPG disables g and removes its ACLs, LUNs and portals, then g
// itself, in the order the kernel needs. It returns the storage objects
// the LUNs exported.
func (r *Root) removeTPG(ctx context.Context, g TPG) ([]*StorageObjectInfo, error) {
	if err := g.SetEnabled(false); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	acls, err := g.NodeACLs()
	if err != nil {
		return nil, err
	}
	for _, a := range acls {
		if err := r.removeACL(ctx, a); err != nil {
			return nil, err
		}
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
	nps, err := g.NetworkPortals()
	if err != nil {
		return nil, err
	}
	for _, np := range nps {
		if err := r.rmdir(ctx, np.Path(), "portal "+np.Addr.String()); err != nil {
			return nil, err
		}
	}
	if err := r.rmdir(ctx, g.Path(), "tpg "+g.String()); err != nil {
		return nil, err
	}
	return sos, nil
}

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
			return wrap(fmt.Errorf("%w: %v", ErrNotOwned, err), "teardown %s", iqn)
		}
	}
	tg := r.Target(iqn)
	exists, err := tg.Exists()
	if err != nil {
		return errf("stat target %s: %w", iqn, err)
	}
	if !exists {
		return r.deleteNamedStorageObjects(ctx, iqn, opts)
	}
	owned, why, err := tg.Owned()
	if err != nil {
		return err
	}
	if !owned {
		return fmt.Errorf("lio: teardown %s: %w (%s); lunferry leaves it alone", iqn, ErrNotOwned, why)
	}
	if !opts.Force {
		ss, err := r.Sessions(iqn)
		if err != nil {
			return err
		}
		if len(ss) > 0 {
			return &SessionsActiveError{TargetIQN: iqn, Sessions: ss}
		}
	}
	tpgs, err := tg.TPGs()
	if err != nil {
		return err
	}
	var sos []*StorageObjectInfo
	for _, g := range tpgs {
		s, err := r.removeTPG(ctx, g)
		if err != nil {
			return wrap(err, "teardown %s", iqn)
		}
		sos = append(sos, s...)
	}
	if err := r.rmdir(ctx, tg.Path(), "target "+iqn); err != nil {
		return wrap(err, "teardown %s", iqn)
	}
	if opts.KeepStorageObjects {
		return nil
	}
	for _, so := range sos {
		if !so.Owned {
			continue
		}
		if err := r.removeStorageObject(ctx, so); err != nil {
			if errors.Is(err, unix.EBUSY) || errors.Is(err, fs.ErrNotExist) {
				continue // still exported elsewhere, or already gone
			}
			return wrap(err, "teardown %s", iqn)
		}
	}
	return r.deleteNamedStorageObjects(ctx, iqn, opts)
}

// deleteNamedStorageObjects removes opts.StorageObjects, whatever their
// backstore, leaving those still in use.
func (r *Root) deleteNamedStorageObjects(ctx context.Context, iqn string, opts TeardownOptions) error {
	if opts.KeepStorageObjects || len(opts.StorageObjects) == 0 {
		return nil
	}
	all, err := r.StorageObjects()
	if err != nil {
		return wrap(err, "teardown %s", iqn)
	}
	for _, n := range opts.StorageObjects {
		for i := range all {
			if all[i].Name != n {
				continue
			}
			if err := r.removeStorageObject(ctx, &all[i]); err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, fs.ErrNotExist) {
				return wrap(err, "teardown %s", iqn)
			}
		}
	}
	return nil
}

// Restore recreates the objects of c, which must all be lunferry's
// (storage object names with NamePrefix, TPGs with a NamePrefix
// TargetAlias, LUNs exporting only those storage objects): use
// (*SaveConfig).Owned to filter a full targetcli dump first. It is
// idempotent like Apply and, like Apply, removes what it created when it
// fails.
func (r *Root) Restore(ctx context.Context, c *SaveConfig) error {
	soNames := map[string]bool{}
	for _, so := range c.StorageObjects {
		if err := ValidateStorageObjectName(so.Name); err != nil {
			return fmt.Errorf("lio: restore: %w: %v", ErrNotOwned, err)
		}
		soNames[so.Path()] = true
	}
	for _, tc := range c.Targets {
		for _, g := range tc.TPGs {
			for _, l := range g.LUNs {
				if !soNames[l.StorageObject] {
					return fmt.Errorf("lio: restore: target %s lun %d: %w: storage object %s is not in the configuration", tc.WWN, l.Index, ErrInvalidConfig, l.StorageObject)
				}
			}
			for _, p := range g.Portals {
				a, err := netip.ParseAddr(strings.Trim(p.IPAddress, "[]"))
				if err != nil {
					return fmt.Errorf("lio: restore: target %s: %w: portal %q", tc.WWN, ErrInvalidName, p.IPAddress)
				}
				if err := r.checkPortals([]Portal{{Addr: a, Port: p.Port}}); err != nil {
					return wrap(err, "restore: target %s", tc.WWN)
				}
			}
		}
	}
	t := r.newTx()
	paths := map[string]string{}
	for _, so := range c.StorageObjects {
		p, err := r.ensureStorageObject(ctx, t, soSpec{cfg: so, wwn: WWN{UnitSerial: so.WWN}})
		if err != nil {
			return t.rollback(wrap(err, "restore"))
		}
		paths[so.Path()] = p
	}
	for _, tc := range c.Targets {
		if err := r.applyTarget(ctx, t, tc, paths); err != nil {
			return t.rollback(wrap(err, "restore"))
		}
	}
	return nil
}
