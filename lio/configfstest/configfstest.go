// Package configfstest is a fake of LIO's configfs tree for unit tests
// without root or kernel. It implements lio.FS over a temporary directory
// and enforces the configfs behaviour lio depends on, as the 6.1 kernel
// implements it (fs/configfs, drivers/target/target_core_configfs.c,
// target_core_fabric_configfs.c, iscsi/iscsi_target_configfs.c):
//
//   - mkdir is only allowed where the kernel has a make_group (core/,
//     core/<hba>/, iscsi/, a target, a TPG's lun/, np/ and acls/, an ACL)
//     and with the names the kernel parses (iblock_N, tpgt_N, lun_N,
//     addr:port); elsewhere it fails with EPERM or EINVAL;
//   - mkdir creates the default groups and attribute files of the object,
//     with their modes (0644 read-write, 0444 read-only, 0200 write-only);
//   - rmdir fails with EPERM on a default group, ENOTEMPTY while a
//     non-default group or symlink is inside, EBUSY while a symlink points
//     at the item, and removes the attribute files and default groups;
//   - symlinks are only allowed from a TPG LUN to an enabled storage object
//     (ENODEV if not enabled) and from a mapped LUN to a TPG LUN of the same
//     TPG that exports something (EINVAL otherwise); one link per LUN;
//     Readlink returns a relative target, as configfs does;
//   - writes go to existing attributes only (ENOENT), not to read-only
//     ones (EACCES); reads of write-only ones fail (EACCES);
//   - a storage object needs its control parameters before enable, refuses
//     control changes and a second enable afterwards (EEXIST), and refuses
//     wwn changes while a LUN exports it (EINVAL);
//   - a TPG's enable accepts 0/1, and disabling it drops its sessions.
//
// Tests can inject failures (FailOn), simulate logins (LogIn), and read the
// list of mutating calls (Ops) to check idempotency.
package configfstest

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// FS is a fake configfs rooted at Root (the equivalent of
// /sys/kernel/config/target). It is safe for concurrent use.
type FS struct {
	// Root is the fake tree's target directory; pass it as
	// lio.Root.ConfigFSRoot.
	Root string

	mu       sync.Mutex
	defaults map[string]bool // default groups, by absolute path
	failures []failure
	ops      []string
}

type failure struct {
	op, pattern string
	err         error
}

// New returns a fake configfs in a test temporary directory, with core/
// present and the iscsi fabric not yet registered (lio creates iscsi/).
func New(t testing.TB) *FS {
	t.Helper()
	f, err := NewAt(filepath.Join(t.TempDir(), "target"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// NewAt creates a fake configfs at dir, which must not exist.
func NewAt(dir string) (*FS, error) {
	f := &FS{Root: dir, defaults: map[string]bool{}}
	if err := os.MkdirAll(path.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	if err := f.build(dir, node{
		files: []file{{"version", ro, "Target Engine Core ConfigFS Infrastructure v5.0 on Linux/x86_64 on 6.1.0-fake"}, {"dbroot", rw, "/etc/target"}},
		dirs: map[string]node{"core": {dirs: map[string]node{
			"alua": {dirs: map[string]node{"lu_gps": {dirs: map[string]node{"default_lu_gp": {files: []file{{"lu_gp_id", rw, "0"}, {"members", ro, ""}}}}}}},
		}}},
	}); err != nil {
		return nil, err
	}
	return f, nil
}

// FailOn makes every later call of op ("mkdir", "rmdir", "symlink",
// "remove", "write", "read") on a path matching pattern fail with err.
// pattern is matched with path.Match against the path relative to Root
// (e.g. "iscsi/*/tpgt_1/acls/*").
func (f *FS) FailOn(op, pattern string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, failure{op, pattern, err})
}

// ClearFailures removes every injected failure.
func (f *FS) ClearFailures() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = nil
}

// Ops returns the mutating calls made so far ("mkdir <rel>", "write
// <rel>", ...), in order. Written values are not recorded.
func (f *FS) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

// ResetOps clears the list Ops returns.
func (f *FS) ResetOps() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = nil
}

// Objects lists every directory that is not a default group (objects made
// by mkdir) and every symlink, relative to Root, sorted. An empty LIO
// (after a complete teardown) has none but, once registered, "iscsi".
func (f *FS) Objects() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	_ = filepath.WalkDir(f.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == f.Root {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 || d.IsDir() && !f.defaults[p] {
			out = append(out, f.rel(p))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// LogIn simulates initiator logging in to target's TPG tag through its
// ACL: the ACL's info file then shows a session, as the kernel's does.
func (f *FS) LogIn(target string, tag uint16, initiator string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tpg := path.Join(f.Root, "iscsi", target, fmt.Sprintf("tpgt_%d", tag))
	if v, _ := os.ReadFile(path.Join(tpg, "enable")); strings.TrimSpace(string(v)) != "1" {
		return fmt.Errorf("configfstest: login to %s: tpg %d is not enabled", target, tag)
	}
	acl := path.Join(tpg, "acls", initiator)
	if _, err := os.Stat(acl); err != nil {
		return fmt.Errorf("configfstest: login to %s: initiator %s has no ACL: %w", target, initiator, err)
	}
	info := fmt.Sprintf("InitiatorName: %s\nInitiatorAlias: fake\nLIO Session ID: 7   ISID: 0x400001370000  TSIH: 1  SessionType: Normal\nSession State: TARG_SESS_STATE_LOGGED_IN\n"+
		"---------------------[iSCSI Session Values]-----------------------\n"+
		"  CmdSN/WR  :  CmdSN/WC  :  ExpCmdSN  :  MaxCmdSN  :     ITT    :     TTT\n"+
		" 0x00000040   0x00000040   0x00000010   0x0000004f   0x00000000   0xffffffff\n"+
		"----------------------[iSCSI Connections]-------------------------\n"+
		"CID: 0  Connection State: TARG_CONN_STATE_LOGGED_IN\n   Address 127.0.0.1 TCP  StatSN: 0x00000012\n", initiator)
	return put(path.Join(acl, "info"), info)
}

// LogOut ends the simulated session of initiator on target's TPG tag.
func (f *FS) LogOut(target string, tag uint16, initiator string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	acl := path.Join(f.Root, "iscsi", target, fmt.Sprintf("tpgt_%d", tag), "acls", initiator)
	return put(path.Join(acl, "info"), noSession(initiator))
}

func noSession(initiator string) string {
	return "No active iSCSI Session for Initiator Endpoint: " + initiator + "\n"
}

// ---- lio.FS ----

// Mkdir implements lio.FS.
func (f *FS) Mkdir(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("mkdir", p); err != nil {
		return err
	}
	parent := path.Dir(p)
	if _, err := os.Lstat(parent); err != nil {
		return pe("mkdir", p, unix.ENOENT)
	}
	if _, err := os.Lstat(p); err == nil {
		return pe("mkdir", p, unix.EEXIST)
	}
	spec, err := f.makeGroup(parent, path.Base(p))
	if err != nil {
		return pe("mkdir", p, err)
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	if err := f.build(p, spec); err != nil {
		return err
	}
	f.ops = append(f.ops, "mkdir "+f.rel(p))
	return nil
}

// Rmdir implements lio.FS.
func (f *FS) Rmdir(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("rmdir", p); err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return pe("rmdir", p, unix.ENOENT)
	}
	if !fi.IsDir() {
		return pe("rmdir", p, unix.ENOTDIR)
	}
	if f.defaults[p] || p == f.Root {
		return pe("rmdir", p, unix.EPERM)
	}
	// configfs_detach_prep: links to the item pin it (EBUSY), then any
	// non-default child (group or link) makes it ENOTEMPTY, then links to
	// one of its default groups pin it too.
	if f.linkedInto(p) {
		return pe("rmdir", p, unix.EBUSY)
	}
	if f.hasUserChildren(p) {
		return pe("rmdir", p, unix.ENOTEMPTY)
	}
	if f.linkedIntoDefaults(p) {
		return pe("rmdir", p, unix.EBUSY)
	}
	for d := range f.defaults {
		if strings.HasPrefix(d, p+"/") {
			delete(f.defaults, d)
		}
	}
	if err := chmodAll(p); err != nil {
		return err
	}
	if err := os.RemoveAll(p); err != nil {
		return err
	}
	f.ops = append(f.ops, "rmdir "+f.rel(p))
	return nil
}

// Symlink implements lio.FS.
func (f *FS) Symlink(target, link string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("symlink", link); err != nil {
		return err
	}
	if _, err := os.Lstat(link); err == nil {
		return pe("symlink", link, unix.EEXIST)
	}
	dir := path.Dir(link)
	kind := f.kind(dir)
	if err := f.checkLink(kind, dir, target); err != nil {
		return pe("symlink", link, err)
	}
	rel, err := filepath.Rel(dir, target)
	if err != nil {
		return err
	}
	if err := os.Symlink(rel, link); err != nil {
		return err
	}
	if err := f.linked(kind, dir, target); err != nil {
		return err
	}
	f.ops = append(f.ops, "symlink "+f.rel(link))
	return nil
}

// checkLink returns the errno the kernel gives for a link from the
// directory dir, of kind, to target, or nil if it allows it.
func (f *FS) checkLink(kind objKind, dir, target string) error {
	tfi, err := os.Stat(target)
	if err != nil || !tfi.IsDir() {
		return unix.ENOENT
	}
	if links, _ := f.linksIn(dir); len(links) > 0 {
		return unix.EEXIST
	}
	switch kind {
	case kindLUN:
		if f.kind(target) != kindStorageObject {
			return unix.EFAULT
		}
		if v, _ := os.ReadFile(path.Join(target, "enable")); strings.TrimSpace(string(v)) != "1" {
			return unix.ENODEV // "se_device not configured yet"
		}
	case kindMappedLUN:
		// Must be a LUN of the same TPG that exports a device.
		tpg := path.Dir(path.Dir(path.Dir(dir))) // <tpg>/acls/<iqn>/lun_N
		if f.kind(target) != kindLUN || path.Dir(path.Dir(target)) != tpg {
			return unix.EINVAL
		}
		if links, _ := f.linksIn(target); len(links) == 0 {
			return unix.EINVAL
		}
	default:
		return unix.EPERM
	}
	return nil
}

// linked makes the files the kernel fills in when a link from dir, of
// kind, to target is made.
func (f *FS) linked(kind objKind, dir, target string) error {
	switch kind {
	case kindLUN:
		return put(path.Join(dir, "alua_tg_pt_gp"), "TG Port Alua Group: default_tg_pt_gp\nTG Port Group ID: 0\n")
	case kindMappedLUN:
		// target_fabric_mappedlun_link: the mapping is read-only if the
		// TPG's prod_mode_write_protect is set, or the LUN is (device
		// opened read-only).
		tpg := path.Dir(path.Dir(target))
		wp := readTrim(path.Join(tpg, "attrib", "prod_mode_write_protect")) == "1"
		if links, _ := f.linksIn(target); len(links) > 0 {
			so := filepath.Clean(filepath.Join(target, mustReadlink(path.Join(target, links[0]))))
			if controlState(so)["readonly"] == "1" {
				wp = true
			}
		}
		return put(path.Join(dir, "write_protect"), map[bool]string{true: "1\n", false: "0\n"}[wp])
	}
	return nil
}

// Remove implements lio.FS: only symlinks can be unlinked.
func (f *FS) Remove(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("remove", p); err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return pe("unlink", p, unix.ENOENT)
	}
	if fi.IsDir() {
		return pe("unlink", p, unix.EISDIR)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return pe("unlink", p, unix.EPERM)
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	f.ops = append(f.ops, "unlink "+f.rel(p))
	return nil
}

// WriteFile implements lio.FS.
func (f *FS) WriteFile(p string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write", p); err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return pe("open", p, unix.ENOENT)
	}
	if fi.IsDir() {
		return pe("open", p, unix.EISDIR)
	}
	if fi.Mode().Perm()&0o200 == 0 {
		return pe("open", p, unix.EACCES)
	}
	if err := f.store(p, string(data)); err != nil {
		return pe("write", p, err)
	}
	f.ops = append(f.ops, "write "+f.rel(p))
	return nil
}

// ReadFile implements lio.FS.
func (f *FS) ReadFile(p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("read", p); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, pe("open", p, unix.ENOENT)
	}
	if fi.Mode().IsRegular() && fi.Mode().Perm()&0o400 == 0 {
		return nil, pe("open", p, unix.EACCES)
	}
	if fi.Mode().IsRegular() {
		return readAny(p)
	}
	return os.ReadFile(p)
}

// ReadDir implements lio.FS. The fake's own state files are hidden.
func (f *FS) ReadDir(p string) ([]fs.DirEntry, error) {
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	out := ents[:0]
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), stateFile) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Readlink implements lio.FS.
func (f *FS) Readlink(p string) (string, error) { return os.Readlink(p) }

// Lstat implements lio.FS.
func (f *FS) Lstat(p string) (fs.FileInfo, error) { return os.Lstat(p) }

// ---- internals ----

func (f *FS) rel(p string) string {
	if r, ok := strings.CutPrefix(p, f.Root+"/"); ok {
		return r
	}
	return p
}

func (f *FS) check(op, p string) error {
	for _, x := range f.failures {
		if x.op != op {
			continue
		}
		if ok, _ := path.Match(x.pattern, f.rel(p)); ok {
			return &os.PathError{Op: op, Path: p, Err: x.err}
		}
	}
	return nil
}

func pe(op, p string, err error) error { return &os.PathError{Op: op, Path: p, Err: err} }

type objKind int

const (
	kindNone objKind = iota
	kindStorageObject
	kindTPG
	kindLUN
	kindACL
	kindMappedLUN
	kindPortal
)

var (
	hbaRE  = regexp.MustCompile(`^(iblock|fileio|rd_mcp|pscsi|user)_([0-9]+)$`)
	lunRE  = regexp.MustCompile(`^lun_([0-9]+)$`)
	tpgtRE = regexp.MustCompile(`^tpgt_([0-9]+)$`)
)

// kind classifies an object directory by its place in the tree.
func (f *FS) kind(p string) objKind {
	parts := strings.Split(f.rel(p), "/")
	switch {
	case len(parts) == 3 && parts[0] == "core" && hbaRE.MatchString(parts[1]):
		return kindStorageObject
	case len(parts) == 3 && parts[0] == "iscsi" && tpgtRE.MatchString(parts[2]):
		return kindTPG
	case len(parts) == 5 && parts[0] == "iscsi" && parts[3] == "lun" && lunRE.MatchString(parts[4]):
		return kindLUN
	case len(parts) == 5 && parts[0] == "iscsi" && parts[3] == "np":
		return kindPortal
	case len(parts) == 5 && parts[0] == "iscsi" && parts[3] == "acls":
		return kindACL
	case len(parts) == 6 && parts[0] == "iscsi" && parts[3] == "acls" && lunRE.MatchString(parts[5]):
		return kindMappedLUN
	}
	return kindNone
}

// makeGroup returns the default contents of name created in parent, or the
// errno the kernel gives.
func (f *FS) makeGroup(parent, name string) (node, error) {
	rp := f.rel(parent)
	if parent == f.Root {
		rp = ""
	}
	parts := strings.Split(rp, "/")
	switch {
	case rp == "":
		if name == "iscsi" {
			return fabricNode(), nil
		}
		return node{}, unix.ENOENT // unknown fabric module
	case rp == "core":
		m := hbaRE.FindStringSubmatch(name)
		if m == nil {
			return node{}, unix.EINVAL
		}
		return hbaNode(m[1], m[2]), nil
	case len(parts) == 2 && parts[0] == "core" && hbaRE.MatchString(parts[1]):
		return storageObjectNode(hbaRE.FindStringSubmatch(parts[1])[1]), nil
	case rp == "iscsi":
		if len(name) > 223 || strings.ContainsAny(name, " \n") || name == "discovery_auth" {
			return node{}, unix.EINVAL
		}
		return targetNode(), nil
	case len(parts) == 2 && parts[0] == "iscsi":
		m := tpgtRE.FindStringSubmatch(name)
		if m == nil {
			return node{}, unix.EINVAL
		}
		if _, err := strconv.ParseUint(m[1], 10, 16); err != nil {
			return node{}, unix.EINVAL
		}
		return tpgNode(), nil
	case len(parts) == 4 && parts[0] == "iscsi" && parts[3] == "lun":
		if !lunRE.MatchString(name) {
			return node{}, unix.EINVAL
		}
		return lunNode(), nil
	case len(parts) == 4 && parts[0] == "iscsi" && parts[3] == "np":
		if !validPortalName(name) {
			return node{}, unix.EINVAL
		}
		return node{files: []file{{"iser", rw, "0"}, {"cxgbit", rw, "0"}}}, nil
	case len(parts) == 4 && parts[0] == "iscsi" && parts[3] == "acls":
		if len(name) > 223 {
			return node{}, unix.EINVAL
		}
		return aclNode(name), nil
	case len(parts) == 5 && parts[0] == "iscsi" && parts[3] == "acls":
		if !lunRE.MatchString(name) {
			return node{}, unix.EINVAL
		}
		return mappedLUNNode(), nil
	}
	return node{}, unix.EPERM
}

// validPortalName reports whether the kernel parses name as a portal:
// "a.b.c.d:port" or "[v6]:port".
func validPortalName(name string) bool {
	i := strings.LastIndexByte(name, ':')
	if i < 0 {
		return false
	}
	host := name[:i]
	if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") {
		return false
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil || a.Is6() && !strings.HasPrefix(host, "[") {
		return false
	}
	_, err = strconv.ParseUint(name[i+1:], 10, 16)
	return err == nil
}

// linkedInto reports whether a symlink in the tree points at p itself (the
// kernel's s_links of the item: its export count, for a storage object).
func (f *FS) linkedInto(p string) bool {
	return f.anyLink(func(abs string) bool { return abs == p })
}

// linkedIntoDefaults reports whether a symlink points at one of p's
// default groups (nested through default groups only).
func (f *FS) linkedIntoDefaults(p string) bool {
	return f.anyLink(func(abs string) bool {
		if !strings.HasPrefix(abs, p+"/") {
			return false
		}
		for q := abs; q != p; q = path.Dir(q) {
			if !f.defaults[q] {
				return false
			}
		}
		return true
	})
}

func (f *FS) anyLink(match func(abs string) bool) bool {
	found := false
	_ = filepath.WalkDir(f.Root, func(q string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if t, err := os.Readlink(q); err == nil && match(filepath.Clean(filepath.Join(filepath.Dir(q), t))) {
				found = true
			}
		}
		return nil
	})
	return found
}

// hasUserChildren reports whether p holds a symlink or a non-default
// directory (directly or inside its default groups).
func (f *FS) hasUserChildren(p string) bool {
	ents, err := os.ReadDir(p)
	if err != nil {
		return false
	}
	for _, e := range ents {
		q := path.Join(p, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			return true
		}
		if e.IsDir() {
			if !f.defaults[q] || f.hasUserChildren(q) {
				return true
			}
		}
	}
	return false
}

func (f *FS) linksIn(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink != 0 {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func chmodAll(p string) error {
	return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			return os.Chmod(q, 0o600)
		}
		return nil
	})
}

func mustReadlink(p string) string {
	t, _ := os.Readlink(p)
	return t
}
