package lio

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Op is one mutating configfs call, as a Recorder reports it.
type Op struct {
	// Kind is "mkdir", "rmdir", "symlink", "unlink" or "write".
	Kind string
	// Path is the directory, link or attribute.
	Path string
	// Target is the symlink target (symlink only).
	Target string
	// Value is the written value (write only); CHAP passwords are
	// replaced by "<secret>".
	Value string
}

// String renders the op as a shell-like line, e.g.
// "write /sys/kernel/config/target/iscsi/.../enable = 1".
func (o Op) String() string {
	switch o.Kind {
	case "symlink":
		return fmt.Sprintf("symlink %s -> %s", o.Path, o.Target)
	case "write":
		return fmt.Sprintf("write %s = %s", o.Path, o.Value)
	}
	return o.Kind + " " + o.Path
}

// isSecret reports whether writing p carries a CHAP secret.
func isSecret(p string) bool {
	b := path.Base(p)
	return path.Base(path.Dir(p)) != "attrib" && (b == "password" || b == "password_mutual")
}

// Recorder is an FS that reports every mutating call to Log and either
// forwards it to FS or, with DryRun, only pretends to: it then keeps an
// overlay of what would have been created, written and removed, so that
// lio's later reads in the same run see a consistent tree (attributes of
// groups it pretended to create read as empty, so a dry run also lists
// writes of values the kernel would already have as defaults). Reads go
// to FS. A Recorder is how `lunferry plan --dry-run` can print what an
// Apply or Teardown would do without doing it; use a fresh one for each
// dry run, since the overlay stays.
type Recorder struct {
	// FS is the filesystem reads (and, without DryRun, writes) go to
	// (nil: OSFS).
	FS FS
	// Log receives every mutating call, in order (nil: not reported).
	Log func(Op)
	// DryRun keeps mutations out of FS.
	DryRun bool

	mu      sync.Mutex
	dirs    map[string]bool   // pretended mkdirs
	links   map[string]string // pretended symlinks
	values  map[string]string // pretended writes
	removed map[string]bool   // pretended rmdir/unlink
}

func (r *Recorder) base() FS {
	if r.FS == nil {
		return OSFS{}
	}
	return r.FS
}

func (r *Recorder) log(o Op) {
	if isSecret(o.Path) && o.Kind == "write" {
		o.Value = "<secret>"
	}
	if r.Log != nil {
		r.Log(o)
	}
}

func (r *Recorder) init() {
	if r.dirs == nil {
		r.dirs, r.links, r.values, r.removed = map[string]bool{}, map[string]string{}, map[string]string{}, map[string]bool{}
	}
}

// gone reports whether p or a parent was pretended removed.
func (r *Recorder) gone(p string) bool {
	for q := p; q != "/" && q != "."; q = path.Dir(q) {
		if r.removed[q] && !r.dirs[q] {
			return true
		}
	}
	return false
}

// underCreated reports whether p is inside a pretended mkdir.
func (r *Recorder) underCreated(p string) bool {
	for q := path.Dir(p); q != "/" && q != "."; q = path.Dir(q) {
		if r.dirs[q] {
			return true
		}
	}
	return false
}

// mutate logs o, then makes the call on the base FS or, in a dry run,
// records it in the overlay with pretend.
func (r *Recorder) mutate(o Op, call func(FS) error, pretend func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log(o)
	if !r.DryRun {
		return call(r.base())
	}
	r.init()
	pretend()
	return nil
}

// Mkdir implements FS.
func (r *Recorder) Mkdir(p string) error {
	return r.mutate(Op{Kind: "mkdir", Path: p}, func(f FS) error { return f.Mkdir(p) }, func() {
		r.dirs[p] = true
		delete(r.removed, p)
	})
}

// Rmdir implements FS.
func (r *Recorder) Rmdir(p string) error {
	return r.mutate(Op{Kind: "rmdir", Path: p}, func(f FS) error { return f.Rmdir(p) }, func() {
		delete(r.dirs, p)
		r.removed[p] = true
	})
}

// Symlink implements FS.
func (r *Recorder) Symlink(target, link string) error {
	return r.mutate(Op{Kind: "symlink", Path: link, Target: target}, func(f FS) error { return f.Symlink(target, link) }, func() {
		r.links[link] = target
		delete(r.removed, link)
	})
}

// Remove implements FS.
func (r *Recorder) Remove(p string) error {
	return r.mutate(Op{Kind: "unlink", Path: p}, func(f FS) error { return f.Remove(p) }, func() {
		delete(r.links, p)
		r.removed[p] = true
	})
}

// WriteFile implements FS.
func (r *Recorder) WriteFile(p string, data []byte) error {
	return r.mutate(Op{Kind: "write", Path: p, Value: string(data)}, func(f FS) error { return f.WriteFile(p, data) }, func() {
		r.values[p] = string(data)
	})
}

// ReadFile implements FS.
func (r *Recorder) ReadFile(p string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.DryRun && r.dirs != nil {
		if v, ok := r.values[p]; ok {
			return []byte(v + "\n"), nil
		}
		if r.gone(p) {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		if r.underCreated(p) {
			return nil, nil
		}
	}
	return r.base().ReadFile(p)
}

// ReadDir implements FS.
func (r *Recorder) ReadDir(p string) ([]fs.DirEntry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.DryRun || r.dirs == nil {
		return r.base().ReadDir(p)
	}
	if r.gone(p) {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	var ents []fs.DirEntry
	if !r.dirs[p] {
		var err error
		if ents, err = r.base().ReadDir(p); err != nil {
			return nil, err
		}
	}
	out := ents[:0:0]
	seen := map[string]bool{}
	for _, e := range ents {
		if !r.removed[path.Join(p, e.Name())] {
			out = append(out, e)
			seen[e.Name()] = true
		}
	}
	for d := range r.dirs {
		if path.Dir(d) == p && !seen[path.Base(d)] {
			out = append(out, fs.FileInfoToDirEntry(fakeInfo{name: path.Base(d), mode: fs.ModeDir | 0o755}))
		}
	}
	for l := range r.links {
		if path.Dir(l) == p && !seen[path.Base(l)] {
			out = append(out, fs.FileInfoToDirEntry(fakeInfo{name: path.Base(l), mode: fs.ModeSymlink | 0o777}))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Readlink implements FS.
func (r *Recorder) Readlink(p string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.DryRun && r.links != nil {
		if t, ok := r.links[p]; ok {
			return t, nil
		}
		if r.gone(p) {
			return "", &fs.PathError{Op: "readlink", Path: p, Err: fs.ErrNotExist}
		}
	}
	return r.base().Readlink(p)
}

// Lstat implements FS.
func (r *Recorder) Lstat(p string) (fs.FileInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.DryRun && r.dirs != nil {
		if r.dirs[p] {
			return fakeInfo{name: path.Base(p), mode: fs.ModeDir | 0o755}, nil
		}
		if _, ok := r.links[p]; ok {
			return fakeInfo{name: path.Base(p), mode: fs.ModeSymlink | 0o777}, nil
		}
		if _, ok := r.values[p]; ok {
			return fakeInfo{name: path.Base(p), mode: 0o644}, nil
		}
		if r.gone(p) || r.underCreated(p) {
			return nil, &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
		}
	}
	fi, err := r.base().Lstat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return fi, err
}

// fakeInfo describes an object a dry run pretended to create.
type fakeInfo struct {
	name string
	mode fs.FileMode
}

// Name implements fs.FileInfo.
func (f fakeInfo) Name() string { return f.name }

// Size implements fs.FileInfo.
func (f fakeInfo) Size() int64 { return 0 }

// Mode implements fs.FileInfo.
func (f fakeInfo) Mode() fs.FileMode { return f.mode }

// ModTime implements fs.FileInfo.
func (f fakeInfo) ModTime() time.Time { return time.Time{} }

// IsDir implements fs.FileInfo.
func (f fakeInfo) IsDir() bool { return f.mode.IsDir() }

// Sys implements fs.FileInfo.
func (f fakeInfo) Sys() any { return nil }

// RecordOps returns a Log function that appends to *ops, for tests and for
// callers that print the plan afterwards.
func RecordOps(ops *[]Op) func(Op) {
	return func(o Op) { *ops = append(*ops, o) }
}

// FormatOps renders ops one per line.
func FormatOps(ops []Op) string {
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}
