package lio

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Apply makes configfs match e, in the order storage object → target →
// TPG → LUN → portals → ACLs (with mapped LUNs and CHAP) → enable. It is
// idempotent: objects that already match are left alone, attributes are
// written only when they differ, and portals, ACLs and LUNs of the target
// that e no longer lists are removed. On failure it removes what this call
// created, newest first, and returns the error; changes to objects that
// existed before the call are not undone.
//
// Apply refuses (ErrNotOwned) a target IQN held by a target lunferry did
// not create, and (ErrConflict) a storage object of the same name on
// another device or a LUN that exports another storage object.
func (r *Root) Apply(ctx context.Context, e Export) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if err := r.checkPortals(e.Portals); err != nil {
		return errf("export %s: %w", e.Name, err)
	}
	t := r.newTx()
	soPath, err := r.ensureStorageObject(ctx, t, e.storageSpec())
	if err != nil {
		return t.rollback(errf("export %s: %w", e.Name, err))
	}
	so := e.storageSpec().cfg
	if err := r.applyTarget(ctx, t, e.TargetConfig(), map[string]string{so.Path(): soPath}); err != nil {
		return t.rollback(errf("export %s: %w", e.Name, err))
	}
	return nil
}

// checkPortals verifies that every specific portal address is local.
func (r *Root) checkPortals(ps []Portal) error {
	for _, p := range ps {
		a := p.Addr.Unmap()
		if a.IsUnspecified() {
			continue
		}
		ok, err := r.addrs().IsLocal(a)
		if err != nil {
			return fmt.Errorf("check portal %s: %w", a, err)
		}
		if !ok {
			return fmt.Errorf("%w: portal %s: add the address to an interface first (ip addr add %s/<prefix> dev <iface>), or listen on 0.0.0.0 / ::", ErrAddressNotLocal, a, a)
		}
	}
	return nil
}

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
	tg, err := r.ensureTarget(ctx, t, tc)
	if err != nil {
		return err
	}
	want := map[uint16]bool{}
	for _, gc := range tc.TPGs {
		want[gc.Tag] = true
		if err := r.applyTPG(ctx, t, tg.TPG(gc.Tag), gc, soPaths); err != nil {
			return err
		}
	}
	// TPGs of this (owned) target that the config no longer has.
	return prune(ctx, tg.TPGs, func(g TPG) bool { return want[g.Tag] }, func(ctx context.Context, g TPG) error {
		_, err := r.removeTPG(ctx, g)
		return err
	})
}

// ensureTarget creates the target of tc, or checks that the one that
// exists is lunferry's.
func (r *Root) ensureTarget(ctx context.Context, t *tx, tc TargetConfig) (Target, error) {
	if tc.Fabric != "" && tc.Fabric != fabricISCSI {
		return Target{}, errf("%w: target %s: fabric %q is not supported (iscsi only)", ErrInvalidConfig, tc.WWN, tc.Fabric)
	}
	if err := ValidateIQN(tc.WWN); err != nil {
		return Target{}, errf("target: %w", err)
	}
	if err := r.ensureFabric(ctx); err != nil {
		return Target{}, err
	}
	tg := r.Target(tc.WWN)
	exists, err := tg.Exists()
	if err != nil {
		return tg, errf("stat target %s: %w", tc.WWN, err)
	}
	if !exists {
		if err := t.mkdir(ctx, tg.Path()); err != nil {
			return tg, errf("create target %s: %w", tc.WWN, err)
		}
		return tg, nil
	}
	owned, why, err := tg.Owned()
	if err != nil {
		return tg, err
	}
	if !owned {
		return tg, errf("target %s: %w (%s): choose another target IQN, or remove that target with targetcli if it is no longer used", tc.WWN, ErrNotOwned, why)
	}
	return tg, nil
}

// applyTPG makes TPG g match gc: the ownership mark and attributes first,
// then the LUNs, portals and ACLs gc lists; then what gc no longer lists
// goes, and the TPG is enabled last, once every ACL is in place.
func (r *Root) applyTPG(ctx context.Context, t *tx, g TPG, gc TPGConfig, soPaths map[string]string) error {
	if alias := gc.Parameters["TargetAlias"]; !strings.HasPrefix(alias, NamePrefix) {
		return errf("tpg %s: %w: its TargetAlias %q does not start with %q, so lunferry would not recognise it as its own", g, ErrNotOwned, alias, NamePrefix)
	}
	attrs, err := tpgAttributes(g, gc)
	if err != nil {
		return err
	}
	if err := r.ensureTPG(ctx, t, g, gc.Parameters, attrs); err != nil {
		return err
	}
	keep, err := r.applyTPGMembers(ctx, t, g, gc, soPaths)
	if err != nil {
		return err
	}
	if err := r.pruneTPG(ctx, g, keep); err != nil {
		return err
	}
	return enableTPG(t, g, gc.Enable)
}

// secureTPGAttrs are the TPG attributes that keep ACLs enforced, in the
// order lio checks them: no demo mode (an initiator without an ACL never
// gets in), demo-mode sessions read-only should one exist anyway, and no
// ACLs cached for such sessions. Every TPG lio writes has these values.
var secureTPGAttrs = [...]struct{ name, value string }{
	{"generate_node_acls", "0"},
	{"demo_mode_write_protect", "1"},
	{"cache_dynamic_acls", "0"},
}

// tpgAttributes returns the attributes to write on g: those of gc (which
// may repeat a secure one but not change it), the secure ones, and
// authentication, on when an ACL has CHAP and off unless gc says so.
func tpgAttributes(g TPG, gc TPGConfig) (map[string]string, error) {
	attrs := map[string]string{}
	for k, v := range gc.Attributes {
		attrs[k] = v
	}
	for _, s := range secureTPGAttrs {
		if got, ok := gc.Attributes[s.name]; ok && got != s.value {
			return nil, errf("tpg %s: %w: attribute %s=%s would let initiators without an ACL in; lunferry always uses %s=%s", g, ErrInvalidConfig, s.name, got, s.name, s.value)
		}
		attrs[s.name] = s.value
	}
	chap := false
	for _, a := range gc.NodeACLs {
		if a.ChapUserID != "" || a.ChapPassword != "" {
			chap = true
		}
	}
	if chap {
		attrs["authentication"] = "1"
	} else if _, ok := attrs["authentication"]; !ok {
		attrs["authentication"] = "0"
	}
	return attrs, nil
}

// ensureTPG creates g if it is missing and writes its parameters, then its
// attributes. The parameters come first: TargetAlias is the ownership
// mark, so an interrupted apply leaves a TPG lunferry can recognise and
// clean up.
func (r *Root) ensureTPG(ctx context.Context, t *tx, g TPG, params, attrs map[string]string) error {
	exists, err := r.exists(g.Path())
	if err != nil {
		return errf("stat tpg %s: %w", g, err)
	}
	if !exists {
		if err := t.mkdir(ctx, g.Path()); err != nil {
			return errf("create tpg %s: %w", g, err)
		}
	}
	if err := r.updateParams(g, params); err != nil {
		return err
	}
	if err := r.updateAttrs(path.Join(g.Path(), "attrib"), attrs); err != nil {
		return errf("tpg %s: %w", g, err)
	}
	return nil
}

// updateParams writes the TPG parameters that differ, TargetAlias first.
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
			return errf("tpg %s: %w: parameter %q", g, ErrInvalidConfig, k)
		}
		have, err := g.Parameter(k)
		if errors.Is(err, fs.ErrNotExist) {
			return errf("tpg %s: %w: no parameter %s", g, ErrInvalidConfig, k)
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

// tpgMembers are the LUNs, portals and ACLs a TPGConfig lists: what
// pruneTPG keeps.
type tpgMembers struct {
	luns    map[uint64]bool
	portals map[netip.AddrPort]bool
	acls    map[string]bool
}

// applyTPGMembers makes g's LUNs, portals and ACLs, in that order, match
// gc, and returns what gc lists.
func (r *Root) applyTPGMembers(ctx context.Context, t *tx, g TPG, gc TPGConfig, soPaths map[string]string) (tpgMembers, error) {
	m := tpgMembers{luns: map[uint64]bool{}, portals: map[netip.AddrPort]bool{}, acls: map[string]bool{}}
	for _, lc := range gc.LUNs {
		m.luns[lc.Index] = true
		if err := r.applyLUN(ctx, t, g, lc, soPaths); err != nil {
			return m, err
		}
	}
	for _, pc := range gc.Portals {
		a, err := parsePortalAddr(pc.IPAddress)
		if err != nil {
			return m, errf("tpg %s: %w: portal address %q: %v", g, ErrInvalidName, pc.IPAddress, err)
		}
		ap := netip.AddrPortFrom(a.Unmap(), pc.Port)
		m.portals[ap] = true
		if err := r.applyPortal(ctx, t, g, ap); err != nil {
			return m, err
		}
	}
	for _, ac := range gc.NodeACLs {
		m.acls[ac.NodeWWN] = true
		if err := r.applyACL(ctx, t, g, ac); err != nil {
			return m, err
		}
	}
	return m, nil
}

// pruneTPG removes the ACLs, portals and LUNs of g that keep does not
// list, ACLs first: their mapped LUNs pin the TPG LUNs.
func (r *Root) pruneTPG(ctx context.Context, g TPG, keep tpgMembers) error {
	if err := prune(ctx, g.NodeACLs, func(a NodeACL) bool { return keep.acls[a.InitiatorIQN] }, r.removeACL); err != nil {
		return err
	}
	if err := prune(ctx, g.NetworkPortals, func(np NetworkPortal) bool { return keep.portals[np.addrPort()] }, r.removePortal); err != nil {
		return err
	}
	return prune(ctx, g.LUNs, func(l LUN) bool { return keep.luns[l.Index] }, func(ctx context.Context, l LUN) error {
		_, err := r.removeLUN(ctx, l)
		return err
	})
}

// enableTPG sets g's enable flag; enabling it is undone on rollback.
func enableTPG(t *tx, g TPG, on bool) error {
	en, err := g.Enabled()
	if err != nil {
		return err
	}
	switch {
	case on && !en:
		if err := g.SetEnabled(true); err != nil {
			return err
		}
		t.onUndo("disable tpg "+g.String(), func() error { return g.SetEnabled(false) })
	case !on && en:
		return g.SetEnabled(false)
	}
	return nil
}

// applyLUN makes TPG LUN lc exist and link to its storage object.
func (r *Root) applyLUN(ctx context.Context, t *tx, g TPG, lc LUNConfig, soPaths map[string]string) error {
	if lc.Index > maxLUN {
		return errf("tpg %s: %w: LUN %d above %d", g, ErrInvalidConfig, lc.Index, maxLUN)
	}
	soPath, ok := soPaths[lc.StorageObject]
	if !ok {
		return errf("tpg %s lun %d: %w: storage object %s is not part of this configuration", g, lc.Index, ErrInvalidConfig, lc.StorageObject)
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
				return errf("tpg %s lun %d: %w: it exports %s/%s, not %s: tear down the export first", g, lc.Index, ErrConflict, so.Backstore, so.Name, lc.StorageObject)
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

// applyPortal makes portal ap of g exist.
func (r *Root) applyPortal(ctx context.Context, t *tx, g TPG, ap netip.AddrPort) error {
	// The kernel may have listed the portal under another spelling of the
	// same address; compare by value.
	nps, err := g.NetworkPortals()
	if err != nil {
		return err
	}
	for _, have := range nps {
		if have.addrPort() == ap {
			return nil
		}
	}
	if err := t.mkdir(ctx, g.NetworkPortal(ap).Path()); err != nil {
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

// applyACL makes the ACL ac of g exist with its CHAP credentials,
// attributes and mapped LUNs, and removes mapped LUNs ac does not list.
func (r *Root) applyACL(ctx context.Context, t *tx, g TPG, ac NodeACLConfig) error {
	if err := ValidateIQN(ac.NodeWWN); err != nil {
		return errf("tpg %s acl: %w", g, err)
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
			return errf("acl %s: %w", ac.NodeWWN, err)
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
	return prune(ctx, a.MappedLUNs, func(m MappedLUN) bool { return want[m.Index] }, r.removeMappedLUN)
}

// applyMappedLUN makes the mapped LUN mc of a exist, link to its TPG LUN
// and carry its write protection.
func (r *Root) applyMappedLUN(ctx context.Context, t *tx, a NodeACL, mc MappedLUNConfig) error {
	if mc.Index > maxMappedLUN {
		return errf("acl %s: %w: mapped LUN %d above %d", a.InitiatorIQN, ErrInvalidConfig, mc.Index, maxMappedLUN)
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
			return errf("acl %s mapped lun %d: %w: it maps tpg lun %d, not %d: tear down the export first", a.InitiatorIQN, mc.Index, ErrConflict, idx, mc.TPGLUN)
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
