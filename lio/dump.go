package lio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Dump returns the lunferry-owned part of the configuration in targetcli's
// saveconfig.json form: the storage objects whose names carry NamePrefix
// and the iSCSI targets lunferry owns. Other objects are left out, so the
// result can be reviewed, kept next to lunferry's state, fed to Restore, or
// loaded with `targetcli restoreconfig` (without clear_existing). It
// contains CHAP secrets: write it with mode 0600.
func (r *Root) Dump(ctx context.Context) (*SaveConfig, error) {
	out := &SaveConfig{FabricModules: []json.RawMessage{}, StorageObjects: []StorageObjectConfig{}, Targets: []TargetConfig{}}
	sos, err := r.StorageObjects()
	if err != nil {
		return nil, err
	}
	for _, so := range sos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !so.Owned || !so.Enabled {
			continue
		}
		c, err := r.dumpStorageObject(so)
		if err != nil {
			return nil, err
		}
		out.StorageObjects = append(out.StorageObjects, c)
	}
	tgs, err := r.Targets()
	if err != nil {
		return nil, err
	}
	for _, tg := range tgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		owned, _, err := tg.Owned()
		if err != nil {
			return nil, err
		}
		if !owned {
			continue
		}
		tc, err := r.dumpTarget(tg)
		if err != nil {
			return nil, err
		}
		out.Targets = append(out.Targets, tc)
	}
	return out, nil
}

// Owned returns the part of c that lunferry owns by the package's rule
// (storage objects with NamePrefix; targets whose TPGs carry a NamePrefix
// TargetAlias and whose LUNs export only those storage objects), for
// restoring lunferry's objects out of a full targetcli dump.
func (c *SaveConfig) Owned() *SaveConfig {
	out := &SaveConfig{FabricModules: c.FabricModules, StorageObjects: []StorageObjectConfig{}, Targets: []TargetConfig{}}
	ours := map[string]bool{}
	for _, so := range c.StorageObjects {
		if strings.HasPrefix(so.Name, NamePrefix) {
			out.StorageObjects = append(out.StorageObjects, so)
			ours[so.Path()] = true
		}
	}
	for _, tc := range c.Targets {
		ok := tc.Fabric == fabricISCSI
		for _, g := range tc.TPGs {
			if !strings.HasPrefix(g.Parameters["TargetAlias"], NamePrefix) {
				ok = false
			}
			for _, l := range g.LUNs {
				if !ours[l.StorageObject] {
					ok = false
				}
			}
		}
		if ok {
			out.Targets = append(out.Targets, tc)
		}
	}
	return out
}

// readRW reads every attribute in dir that is both readable and writable
// (what rtslib dumps), as trimmed strings.
func (r *Root) readRW(dir string) (Attributes, error) {
	ents, err := r.fs().ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errf("list %s: %w", r.rel(dir), err)
	}
	out := Attributes{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, errf("stat %s: %w", r.rel(path.Join(dir, e.Name())), err)
		}
		if fi.Mode().Perm()&0o600 != 0o600 {
			continue
		}
		v, err := r.readAttr(path.Join(dir, e.Name()))
		if err != nil {
			return nil, errf("read %s: %w", r.rel(path.Join(dir, e.Name())), err)
		}
		out[e.Name()] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (r *Root) dumpStorageObject(so StorageObjectInfo) (StorageObjectConfig, error) {
	c := StorageObjectConfig{Name: so.Name, Plugin: string(so.Backstore)}
	attrs, err := r.readRW(path.Join(so.Path, "attrib"))
	if err != nil {
		return c, err
	}
	if c.ALUATPGs, err = r.dumpALUA(so.Path); err != nil {
		return c, err
	}
	c.Attributes = attrs
	serial, err := r.readAttr(path.Join(so.Path, "wwn", "vpd_unit_serial"))
	if err != nil {
		return c, errf("read wwn of %s: %w", so.Name, err)
	}
	c.WWN = parseUnitSerial(serial)
	info, err := r.readAttr(path.Join(so.Path, "info"))
	if err != nil {
		return c, errf("read info of %s: %w", so.Name, err)
	}
	wb := attrs["emulate_write_cache"] == "1"
	switch so.Backstore {
	case BackstoreBlock:
		c.Dev = so.Dev
		ro := infoField(info, "readonly") == "1"
		c.ReadOnly, c.WriteBack = &ro, &wb
	case BackstoreFileIO:
		c.Dev = so.Dev
		if c.Dev == "" {
			c.Dev = infoField(info, "File")
		}
		if n, err := strconv.ParseUint(infoField(info, "Size"), 10, 64); err == nil {
			c.Size = &n
		}
		aio := infoField(info, "Async") == "1"
		c.WriteBack, c.AIO = &wb, &aio
	case BackstoreRamdisk:
		pages, pageSize, ok := strings.Cut(infoField(info, "PAGES/PAGE_SIZE"), "*")
		p, err1 := strconv.ParseUint(pages, 10, 64)
		ps, err2 := strconv.ParseUint(pageSize, 10, 64)
		if ok && err1 == nil && err2 == nil {
			n := p * ps
			c.Size = &n
		}
		c.NullIO = infoField(info, "nullio") == "1"
	}
	return c, nil
}

func (r *Root) dumpTarget(tg Target) (TargetConfig, error) {
	tc := TargetConfig{Fabric: fabricISCSI, WWN: tg.IQN, TPGs: []TPGConfig{}}
	tpgs, err := tg.TPGs()
	if err != nil {
		return tc, err
	}
	for _, g := range tpgs {
		gc, err := r.dumpTPG(g)
		if err != nil {
			return tc, err
		}
		tc.TPGs = append(tc.TPGs, gc)
	}
	return tc, nil
}

func (r *Root) dumpTPG(g TPG) (TPGConfig, error) {
	gc := TPGConfig{Tag: g.Tag}
	var err error
	if gc.Enable, err = g.Enabled(); err != nil {
		return gc, err
	}
	if gc.Attributes, err = r.readRW(path.Join(g.Path(), "attrib")); err != nil {
		return gc, err
	}
	params, err := r.readRW(path.Join(g.Path(), "param"))
	if err != nil {
		return gc, err
	}
	if len(params) > 0 {
		gc.Parameters = map[string]string(params)
	}
	if gc.LUNs, err = r.dumpLUNs(g); err != nil {
		return gc, err
	}
	if gc.Portals, err = r.dumpPortals(g); err != nil {
		return gc, err
	}
	acls, err := g.NodeACLs()
	if err != nil {
		return gc, err
	}
	gc.NodeACLs = []NodeACLConfig{}
	for _, a := range acls {
		ac, err := r.dumpACL(a)
		if err != nil {
			return gc, err
		}
		gc.NodeACLs = append(gc.NodeACLs, ac)
	}
	sort.Slice(gc.NodeACLs, func(i, j int) bool { return gc.NodeACLs[i].NodeWWN < gc.NodeACLs[j].NodeWWN })
	return gc, nil
}

// dumpLUNs dumps g's LUNs that export a storage object.
func (r *Root) dumpLUNs(g TPG) ([]LUNConfig, error) {
	luns, err := g.LUNs()
	if err != nil {
		return nil, err
	}
	out := []LUNConfig{}
	for _, l := range luns {
		so, alias, err := l.StorageObject()
		if err != nil {
			return nil, err
		}
		if so == nil {
			continue // a LUN without storage: nothing rtslib could restore
		}
		lc := LUNConfig{Index: l.Index, StorageObject: "/backstores/" + string(so.Backstore) + "/" + so.Name, Alias: alias}
		if gp, err := r.readAttr(path.Join(l.Path(), "alua_tg_pt_gp")); err == nil {
			lc.ALUATGPtGpName = parseALUAGroup(gp)
		}
		out = append(out, lc)
	}
	return out, nil
}

// dumpPortals dumps g's portals, named as their directories are.
func (r *Root) dumpPortals(g TPG) ([]PortalConfig, error) {
	nps, err := g.NetworkPortals()
	if err != nil {
		return nil, err
	}
	out := []PortalConfig{}
	for _, np := range nps {
		host := strings.TrimSuffix(np.Path()[len(path.Dir(np.Path()))+1:], fmt.Sprintf(":%d", np.Addr.Port()))
		pc := PortalConfig{IPAddress: host, Port: np.Addr.Port()}
		if v, err := r.readAttr(path.Join(np.Path(), "iser")); err == nil {
			pc.ISER = v == "1"
		}
		if v, err := r.readAttr(path.Join(np.Path(), "cxgbit")); err == nil {
			pc.Offload = v == "1"
		}
		out = append(out, pc)
	}
	return out, nil
}

// dumpACL dumps a with its CHAP credentials and linked mapped LUNs.
func (r *Root) dumpACL(a NodeACL) (NodeACLConfig, error) {
	ac := NodeACLConfig{NodeWWN: a.InitiatorIQN, MappedLUNs: []MappedLUNConfig{}}
	var err error
	if ac.Attributes, err = r.readRW(path.Join(a.Path(), "attrib")); err != nil {
		return ac, err
	}
	if tag, err := r.readAttr(path.Join(a.Path(), "tag")); err == nil && tag != "" && tag != "NULL" {
		ac.Tag = tag
	}
	c, err := a.CHAP()
	if err != nil {
		return ac, err
	}
	if c != nil {
		ac.ChapUserID, ac.ChapPassword, ac.ChapMutualUserID, ac.ChapMutualPassword = c.UserID, c.Password, c.MutualUserID, c.MutualPassword
	}
	ms, err := a.MappedLUNs()
	if err != nil {
		return ac, err
	}
	for _, m := range ms {
		idx, alias, ok, err := m.TPGLUN()
		if err != nil {
			return ac, errf("read mapped lun %d of %s: %w", m.Index, a.InitiatorIQN, err)
		}
		if !ok {
			continue
		}
		wp, err := m.WriteProtect()
		if err != nil {
			return ac, errf("read write_protect of %s lun_%d: %w", a.InitiatorIQN, m.Index, err)
		}
		ac.MappedLUNs = append(ac.MappedLUNs, MappedLUNConfig{Index: m.Index, TPGLUN: idx, WriteProtect: wp, Alias: alias})
	}
	return ac, nil
}

// parseALUAGroup extracts the group name from a LUN's alua_tg_pt_gp:
// "TG Port Alua Group: default_tg_pt_gp\nTG Port Group ID: 0\n...".
func parseALUAGroup(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	if _, v, ok := strings.Cut(first, ":"); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// TargetState is what Describe reads back about one target.
type TargetState struct {
	// Config is the target as saveconfig would dump it.
	Config TargetConfig
	// StorageObjects are the storage objects its LUNs export.
	StorageObjects []StorageObjectConfig
	// Owned reports whether lunferry owns the target.
	Owned bool
	// NotOwnedReason says why the target is not lunferry's.
	NotOwnedReason string
	// Sessions are the logged-in initiators.
	Sessions []Session
}

// Describe reads back target iqn: its configuration, the storage objects it
// exports, whether lunferry owns it and who is logged in. It works on any
// target (it only reads); a missing target is an error wrapping
// ErrNotFound.
func (r *Root) Describe(ctx context.Context, iqn string) (*TargetState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tg := r.Target(iqn)
	ok, err := tg.Exists()
	if err != nil {
		return nil, errf("stat target %s: %w", iqn, err)
	}
	if !ok {
		return nil, errf("target %s: %w", iqn, ErrNotFound)
	}
	st := &TargetState{}
	if st.Owned, st.NotOwnedReason, err = tg.Owned(); err != nil {
		return nil, err
	}
	if st.Config, err = r.dumpTarget(tg); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, g := range st.Config.TPGs {
		for _, l := range g.LUNs {
			if seen[l.StorageObject] {
				continue
			}
			seen[l.StorageObject] = true
			parts := strings.Split(l.StorageObject, "/") // "", backstores, plugin, name
			if len(parts) != 4 {
				continue
			}
			so, err := r.LookupStorageObject(Backstore(parts[2]), parts[3])
			if err != nil {
				return nil, err
			}
			c, err := r.dumpStorageObject(*so)
			if err != nil {
				return nil, err
			}
			st.StorageObjects = append(st.StorageObjects, c)
		}
	}
	if st.Sessions, err = r.Sessions(iqn); err != nil {
		return nil, err
	}
	return st, nil
}

// aluaRWParams are the ALUA target port group files rtslib dumps
// (rtslib_fb/alua.py alua_rw_params), as integers.
var aluaRWParams = []string{"alua_access_state", "alua_access_status", "alua_write_metadata", "alua_access_type", "preferred",
	"nonop_delay_msecs", "trans_delay_msecs", "implicit_trans_secs", "alua_support_offline", "alua_support_standby",
	"alua_support_transitioning", "alua_support_active_nonoptimized", "alua_support_unavailable", "alua_support_active_optimized"}

// aluaText lists the ALUA files the kernel shows as text, with rtslib's
// index for each text (rtslib_fb/alua.py alua_statuses, alua_types).
var aluaText = map[string][]string{
	"alua_access_status": {"None", "Altered by Explicit STPG", "Altered by Implicit ALUA"},
	"alua_access_type":   {"None", "Implicit", "Explicit", "Implicit and Explicit"},
}

// dumpALUA renders the storage object's ALUA target port groups (alua/*)
// as rtslib's ALUATargetPortGroup.dump does. lio creates none itself; the
// kernel's default_tg_pt_gp is always there.
func (r *Root) dumpALUA(soPath string) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	groups, err := r.listDirs(path.Join(soPath, "alua"))
	if err != nil {
		return nil, errf("list alua groups of %s: %w", r.rel(soPath), err)
	}
	for _, g := range groups {
		dir := path.Join(soPath, "alua", g)
		m := map[string]any{"name": g}
		id, err := r.readAttr(path.Join(dir, "tg_pt_gp_id"))
		if err != nil {
			return nil, errf("read %s: %w", r.rel(path.Join(dir, "tg_pt_gp_id")), err)
		}
		m["tg_pt_gp_id"] = json.Number(id)
		for _, p := range aluaRWParams {
			v, err := r.readAttr(path.Join(dir, p))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, errf("read %s: %w", r.rel(path.Join(dir, p)), err)
			}
			if texts, ok := aluaText[p]; ok {
				for i, s := range texts {
					if s == v {
						v = strconv.Itoa(i)
					}
				}
			}
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return nil, errf("%s: %q is not a number", r.rel(path.Join(dir, p)), v)
			}
			m[p] = json.Number(v)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
