package lio

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Target is an iSCSI target: iscsi/<IQN> in configfs.
type Target struct {
	root *Root
	// IQN is the target's iSCSI name.
	IQN string
}

// Target returns the handle of the iSCSI target iqn (which may not exist).
func (r *Root) Target(iqn string) Target { return Target{root: r, IQN: iqn} }

// Path returns the target's configfs directory.
func (t Target) Path() string { return path.Join(t.root.fabricPath(), t.IQN) }

// Exists reports whether the target exists.
func (t Target) Exists() (bool, error) { return t.root.exists(t.Path()) }

// TPG returns the handle of the target's portal group tag.
func (t Target) TPG(tag uint16) TPG { return TPG{Target: t, Tag: tag} }

// TPGs lists the target's portal groups, by tag.
func (t Target) TPGs() ([]TPG, error) {
	names, err := t.root.listDirs(t.Path())
	if err != nil {
		return nil, errf("list tpgs of %s: %w", t.IQN, err)
	}
	var out []TPG
	for _, n := range names {
		s, ok := strings.CutPrefix(n, "tpgt_")
		if !ok {
			continue
		}
		tag, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			continue
		}
		out = append(out, t.TPG(uint16(tag)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out, nil
}

// Targets lists the iSCSI targets in configfs, lunferry's and others'.
func (r *Root) Targets() ([]Target, error) {
	names, err := r.listDirs(r.fabricPath())
	if err != nil {
		return nil, errf("list targets: %w", err)
	}
	var out []Target
	for _, n := range names {
		if n == "discovery_auth" {
			continue
		}
		out = append(out, r.Target(n))
	}
	return out, nil
}

// TPG is a target portal group: <target>/tpgt_<Tag>.
type TPG struct {
	// Target is the parent target.
	Target Target
	// Tag is the portal group tag.
	Tag uint16
}

// Path returns the TPG's configfs directory.
func (g TPG) Path() string { return path.Join(g.Target.Path(), fmt.Sprintf("tpgt_%d", g.Tag)) }

// String returns "<iqn>/tpgt_<tag>".
func (g TPG) String() string { return fmt.Sprintf("%s/tpgt_%d", g.Target.IQN, g.Tag) }

// Enabled reports the TPG's enable attribute.
func (g TPG) Enabled() (bool, error) {
	v, err := g.Target.root.readAttr(path.Join(g.Path(), "enable"))
	if err != nil {
		return false, errf("read enable of tpg %s: %w", g, err)
	}
	return v == "1", nil
}

// SetEnabled writes the TPG's enable attribute if it differs. Disabling a
// TPG closes its sessions.
func (g TPG) SetEnabled(on bool) error {
	cur, err := g.Enabled()
	if err != nil {
		return err
	}
	if cur == on {
		return nil
	}
	if err := g.Target.root.writeAttr(path.Join(g.Path(), "enable"), boolDigit(on)); err != nil {
		verb := "disable"
		if on {
			verb = "enable"
		}
		return errf("%s tpg %s: %w", verb, g, err)
	}
	return nil
}

// Attribute reads attrib/<name>.
func (g TPG) Attribute(name string) (string, error) {
	return g.Target.root.readAttr(path.Join(g.Path(), "attrib", name))
}

// SetAttribute writes attrib/<name>.
func (g TPG) SetAttribute(name, value string) error {
	if err := g.Target.root.writeAttr(path.Join(g.Path(), "attrib", name), value); err != nil {
		return errf("set tpg %s attribute %s=%s: %w", g, name, value, err)
	}
	return nil
}

// Parameter reads param/<name> (an iSCSI login key).
func (g TPG) Parameter(name string) (string, error) {
	return g.Target.root.readAttr(path.Join(g.Path(), "param", name))
}

// SetParameter writes param/<name>.
func (g TPG) SetParameter(name, value string) error {
	if err := g.Target.root.writeAttr(path.Join(g.Path(), "param", name), value); err != nil {
		return errf("set tpg %s parameter %s=%s: %w", g, name, value, err)
	}
	return nil
}

// LUN returns the handle of TPG LUN index.
func (g TPG) LUN(index uint64) LUN { return LUN{TPG: g, Index: index} }

// LUNs lists the TPG's LUNs by index.
func (g TPG) LUNs() ([]LUN, error) {
	names, err := g.Target.root.listDirs(path.Join(g.Path(), "lun"))
	if err != nil {
		return nil, errf("list luns of tpg %s: %w", g, err)
	}
	var out []LUN
	for _, n := range names {
		if i, ok := parseIndex(n); ok {
			out = append(out, g.LUN(i))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// NetworkPortal returns the handle of the portal ap.
func (g TPG) NetworkPortal(ap netip.AddrPort) NetworkPortal { return NetworkPortal{TPG: g, Addr: ap} }

// NetworkPortals lists the TPG's portals.
func (g TPG) NetworkPortals() ([]NetworkPortal, error) {
	names, err := g.Target.root.listDirs(path.Join(g.Path(), "np"))
	if err != nil {
		return nil, errf("list portals of tpg %s: %w", g, err)
	}
	var out []NetworkPortal
	for _, n := range names {
		ap, err := parsePortalName(n)
		if err != nil {
			return nil, errf("tpg %s: %w", g, err)
		}
		out = append(out, NetworkPortal{TPG: g, Addr: ap, name: n})
	}
	return out, nil
}

// NodeACL returns the handle of the ACL for initiator iqn.
func (g TPG) NodeACL(iqn string) NodeACL { return NodeACL{TPG: g, InitiatorIQN: iqn} }

// NodeACLs lists the TPG's initiator ACLs.
func (g TPG) NodeACLs() ([]NodeACL, error) {
	names, err := g.Target.root.listDirs(path.Join(g.Path(), "acls"))
	if err != nil {
		return nil, errf("list acls of tpg %s: %w", g, err)
	}
	out := make([]NodeACL, 0, len(names))
	for _, n := range names {
		out = append(out, g.NodeACL(n))
	}
	return out, nil
}

// LUN is a TPG LUN: <tpg>/lun/lun_<Index>, holding one symlink to the
// storage object it exports.
type LUN struct {
	// TPG is the parent portal group.
	TPG TPG
	// Index is the LUN number.
	Index uint64
}

// Path returns the LUN's configfs directory.
func (l LUN) Path() string { return path.Join(l.TPG.Path(), "lun", fmt.Sprintf("lun_%d", l.Index)) }

// StorageObject returns the storage object the LUN links to and the link's
// name (rtslib's alias). It returns nil, "" for a LUN without a link.
func (l LUN) StorageObject() (*StorageObjectInfo, string, error) {
	r := l.TPG.Target.root
	links, err := r.listLinks(l.Path())
	if err != nil {
		return nil, "", errf("read lun %d of tpg %s: %w", l.Index, l.TPG, err)
	}
	if len(links) == 0 {
		return nil, "", nil
	}
	dst, err := r.resolveLink(path.Join(l.Path(), links[0]))
	if err != nil {
		return nil, "", errf("read lun %d of tpg %s: %w", l.Index, l.TPG, err)
	}
	so, err := r.storageObjectByPath(dst)
	if err != nil {
		return nil, "", err
	}
	return so, links[0], nil
}

// NetworkPortal is a portal: <tpg>/np/<addr>:<port>, IPv6 in brackets.
type NetworkPortal struct {
	// TPG is the parent portal group.
	TPG TPG
	// Addr is the listening address and port.
	Addr netip.AddrPort
	// name is the directory name as found, when listed.
	name string
}

// Path returns the portal's configfs directory.
func (n NetworkPortal) Path() string {
	name := n.name
	if name == "" {
		name = portalName(n.Addr)
	}
	return path.Join(n.TPG.Path(), "np", name)
}

// addrPort returns the portal's address and port with an IPv4-mapped
// address unmapped, for comparing with a wanted portal.
func (n NetworkPortal) addrPort() netip.AddrPort {
	return netip.AddrPortFrom(n.Addr.Addr().Unmap(), n.Addr.Port())
}

// portalName renders ap as LIO's directory name: "a.b.c.d:port" or
// "[v6]:port".
func portalName(ap netip.AddrPort) string {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return fmt.Sprintf("%s:%d", a, ap.Port())
	}
	return fmt.Sprintf("[%s]:%d", a.WithZone(""), ap.Port())
}

func parsePortalName(n string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(n, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: portal %q has no port", ErrInvalidName, n)
	}
	host, port := strings.Trim(n[:i], "[]"), n[i+1:]
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: portal %q: %v", ErrInvalidName, n, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: portal %q: bad port", ErrInvalidName, n)
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// NodeACL is an initiator ACL: <tpg>/acls/<InitiatorIQN>.
type NodeACL struct {
	// TPG is the parent portal group.
	TPG TPG
	// InitiatorIQN is the initiator allowed in.
	InitiatorIQN string
}

// Path returns the ACL's configfs directory.
func (a NodeACL) Path() string { return path.Join(a.TPG.Path(), "acls", a.InitiatorIQN) }

// CHAP reads the ACL's credentials (auth/). It returns nil when none are
// set. Reading them needs CAP_SYS_ADMIN.
func (a NodeACL) CHAP() (*CHAP, error) {
	r := a.TPG.Target.root
	var v [4]string
	for i, f := range []string{"userid", "password", "userid_mutual", "password_mutual"} {
		s, err := r.readAttr(path.Join(a.Path(), "auth", f))
		if err != nil {
			return nil, errf("read acl %s auth/%s: %w", a.InitiatorIQN, f, err)
		}
		if s == "NULL" {
			s = ""
		}
		v[i] = s
	}
	if v[0] == "" && v[1] == "" && v[2] == "" && v[3] == "" {
		return nil, nil
	}
	return &CHAP{UserID: v[0], Password: v[1], MutualUserID: v[2], MutualPassword: v[3]}, nil
}

// SetCHAP writes the ACL's credentials; nil clears them (the kernel's
// "NULL"). Only values that differ are written.
func (a NodeACL) SetCHAP(c *CHAP) error {
	r := a.TPG.Target.root
	want := [4]string{"NULL", "NULL", "NULL", "NULL"}
	if c != nil {
		for i, s := range []string{c.UserID, c.Password, c.MutualUserID, c.MutualPassword} {
			if s != "" {
				want[i] = s
			}
		}
	}
	for i, f := range []string{"userid", "password", "userid_mutual", "password_mutual"} {
		p := path.Join(a.Path(), "auth", f)
		have, err := r.readAttr(p)
		if err != nil {
			return errf("read acl %s auth/%s: %w", a.InitiatorIQN, f, err)
		}
		if have == want[i] || have == "" && want[i] == "NULL" {
			continue
		}
		if err := r.writeAttr(p, want[i]); err != nil {
			// Never put the value in the error: it may be a secret.
			return errf("set acl %s auth/%s: %w", a.InitiatorIQN, f, err)
		}
	}
	return nil
}

// MappedLUN returns the handle of the ACL's mapped LUN index.
func (a NodeACL) MappedLUN(index uint64) MappedLUN { return MappedLUN{ACL: a, Index: index} }

// MappedLUNs lists the ACL's mapped LUNs by index.
func (a NodeACL) MappedLUNs() ([]MappedLUN, error) {
	names, err := a.TPG.Target.root.listDirs(a.Path())
	if err != nil {
		return nil, errf("list mapped luns of acl %s: %w", a.InitiatorIQN, err)
	}
	var out []MappedLUN
	for _, n := range names {
		if i, ok := parseIndex(n); ok {
			out = append(out, a.MappedLUN(i))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// MappedLUN is a LUN mapping: <acl>/lun_<Index>, holding one symlink to a
// TPG LUN directory and the write_protect flag.
type MappedLUN struct {
	// ACL is the parent ACL.
	ACL NodeACL
	// Index is the LUN number the initiator sees.
	Index uint64
}

// Path returns the mapped LUN's configfs directory.
func (m MappedLUN) Path() string { return path.Join(m.ACL.Path(), fmt.Sprintf("lun_%d", m.Index)) }

// TPGLUN returns the TPG LUN the mapping points to and the link's name;
// ok is false when there is no link.
func (m MappedLUN) TPGLUN() (index uint64, alias string, ok bool, err error) {
	r := m.ACL.TPG.Target.root
	links, err := r.listLinks(m.Path())
	if err != nil || len(links) == 0 {
		return 0, "", false, err
	}
	dst, err := r.resolveLink(path.Join(m.Path(), links[0]))
	if err != nil {
		return 0, "", false, err
	}
	i, ok := parseIndex(path.Base(dst))
	return i, links[0], ok, nil
}

// WriteProtect reads the write_protect flag.
func (m MappedLUN) WriteProtect() (bool, error) {
	v, err := m.ACL.TPG.Target.root.readAttr(path.Join(m.Path(), "write_protect"))
	return v == "1", err
}

// SetWriteProtect writes the write_protect flag if it differs; the kernel
// applies it to running sessions.
func (m MappedLUN) SetWriteProtect(on bool) error {
	cur, err := m.WriteProtect()
	if err != nil {
		return errf("read write_protect of %s lun_%d: %w", m.ACL.InitiatorIQN, m.Index, err)
	}
	if cur == on {
		return nil
	}
	if err := m.ACL.TPG.Target.root.writeAttr(path.Join(m.Path(), "write_protect"), boolDigit(on)); err != nil {
		return errf("set write_protect of %s lun_%d: %w", m.ACL.InitiatorIQN, m.Index, err)
	}
	return nil
}

// parseIndex parses "lun_<n>".
func parseIndex(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "lun_")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// Owned reports whether lunferry owns the target (the rule is in the
// package doc) and, if not, why.
func (t Target) Owned() (bool, string, error) {
	tpgs, err := t.TPGs()
	if err != nil {
		return false, "", err
	}
	for _, g := range tpgs {
		alias, err := g.Parameter("TargetAlias")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, "", errf("read TargetAlias of tpg %s: %w", g, err)
		}
		if !strings.HasPrefix(alias, NamePrefix) {
			empty, err := g.empty()
			if err != nil {
				return false, "", err
			}
			if !empty {
				return false, fmt.Sprintf("tpg %d has TargetAlias %q, not starting with %q", g.Tag, alias, NamePrefix), nil
			}
			continue
		}
		luns, err := g.LUNs()
		if err != nil {
			return false, "", err
		}
		for _, l := range luns {
			so, _, err := l.StorageObject()
			if err != nil {
				return false, "", err
			}
			if so != nil && !so.Owned {
				return false, fmt.Sprintf("lun %d of tpg %d exports storage object %s/%s", l.Index, g.Tag, so.Backstore, so.Name), nil
			}
		}
	}
	return true, "", nil
}

// empty reports whether g is disabled and has no LUN, portal or ACL: what
// an Apply interrupted between creating the TPG and marking it leaves.
func (g TPG) empty() (bool, error) {
	if en, err := g.Enabled(); err != nil || en {
		return false, err
	}
	for _, sub := range []string{"lun", "np", "acls"} {
		names, err := g.Target.root.listDirs(path.Join(g.Path(), sub))
		if err != nil {
			return false, errf("list %s of tpg %s: %w", sub, g, err)
		}
		if len(names) > 0 {
			return false, nil
		}
	}
	return true, nil
}
