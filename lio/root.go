package lio

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// NamePrefix starts the name of every storage object lunferry creates and
// the TargetAlias of every TPG it creates; it is how lio recognises its own
// objects (see the package doc).
const NamePrefix = "lunferry-"

// DefaultConfigFSRoot is where LIO's configfs tree is mounted.
const DefaultConfigFSRoot = "/sys/kernel/config/target"

// fabricISCSI is the iSCSI fabric module's directory under the root.
const fabricISCSI = "iscsi"

// Options configure a Root. The zero value means: the real configfs at
// DefaultConfigFSRoot and the real interface addresses.
type Options struct {
	// ConfigFSRoot is LIO's configfs directory (default
	// DefaultConfigFSRoot).
	ConfigFSRoot string
	// FS performs the filesystem calls (default OSFS). Use
	// lio/configfstest for tests and Recorder for dry runs.
	FS FS
	// Addrs answers whether a portal address is local (default
	// NetlinkAddrs).
	Addrs AddrChecker
}

// Root is a handle on LIO's configfs tree. Its zero value is ready to use
// with the defaults of Options. A Root holds no state besides its options:
// every call reads configfs afresh, so several Roots (or processes) see the
// same objects. lio does not lock: do not run two Apply/Teardown calls on
// the same target at once.
type Root struct {
	// ConfigFSRoot is LIO's configfs directory (empty: DefaultConfigFSRoot).
	ConfigFSRoot string
	// FS performs the filesystem calls (nil: OSFS).
	FS FS
	// Addrs checks portal addresses (nil: NetlinkAddrs).
	Addrs AddrChecker
}

// NewRoot returns a Root configured by o.
func NewRoot(o Options) *Root {
	return &Root{ConfigFSRoot: o.ConfigFSRoot, FS: o.FS, Addrs: o.Addrs}
}

func (r *Root) dir() string {
	if r.ConfigFSRoot == "" {
		return DefaultConfigFSRoot
	}
	return r.ConfigFSRoot
}

func (r *Root) fs() FS {
	if r.FS == nil {
		return OSFS{}
	}
	return r.FS
}

func (r *Root) addrs() AddrChecker {
	if r.Addrs == nil {
		return NetlinkAddrs{}
	}
	return r.Addrs
}

func (r *Root) corePath() string   { return path.Join(r.dir(), "core") }
func (r *Root) fabricPath() string { return path.Join(r.dir(), fabricISCSI) }

// exists reports whether p exists (without following a final symlink).
func (r *Root) exists(p string) (bool, error) {
	_, err := r.fs().Lstat(p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// readAttr reads an attribute and trims the trailing newline and spaces.
func (r *Root) readAttr(p string) (string, error) {
	b, err := r.fs().ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// writeAttr writes value to an attribute.
func (r *Root) writeAttr(p, value string) error {
	return r.fs().WriteFile(p, []byte(value))
}

// listDirs returns the names of the subdirectories of p (nil if p does not
// exist).
func (r *Root) listDirs(p string) ([]string, error) {
	return r.list(p, fs.DirEntry.IsDir)
}

// listLinks returns the names of the symlinks in p (nil if p does not
// exist).
func (r *Root) listLinks(p string) ([]string, error) {
	return r.list(p, func(e fs.DirEntry) bool { return e.Type()&fs.ModeSymlink != 0 })
}

// list returns the names of the entries of p that keep accepts.
func (r *Root) list(p string, keep func(fs.DirEntry) bool) ([]string, error) {
	ents, err := r.fs().ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if keep(e) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// resolveLink returns the cleaned absolute target of the symlink at p.
// configfs returns targets relative to the link's directory.
func (r *Root) resolveLink(p string) (string, error) {
	t, err := r.fs().Readlink(p)
	if err != nil {
		return "", err
	}
	if !path.IsAbs(t) {
		t = path.Join(path.Dir(p), t)
	}
	return path.Clean(t), nil
}

// rel returns p relative to the root, for error messages.
func (r *Root) rel(p string) string {
	if s, ok := strings.CutPrefix(p, r.dir()+"/"); ok {
		return s
	}
	return p
}

// EnsurePRDir makes the directory where LIO keeps persistent reservation
// state (<dbroot>/pr, dbroot read from configfs). LIO rewrites a file
// there on every registration change, APTPL or not, and without the
// directory every PERSISTENT RESERVE OUT a host sends through an export
// fails with NOT READY: a cluster host could not register a key. The
// directory is on the proxy's own filesystem, not in configfs. A kernel
// without a dbroot attribute has nothing to make.
func (r *Root) EnsurePRDir() error {
	dbroot, err := r.readAttr(path.Join(r.dir(), "dbroot"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errf("read dbroot: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dbroot, "pr"), 0o700); err != nil {
		return errf("make the persistent reservation directory: %w", err)
	}
	return nil
}
