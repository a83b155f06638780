package lio

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/internal/attr"
)

// FS is the small set of filesystem calls lio makes on configfs. Every path
// is absolute (it starts with Root.ConfigFSRoot).
//
// The kernel gives configfs semantics the os package does not know about:
// mkdir creates default child groups and attribute files by itself, an
// attribute is written with one write(2) and never created or truncated, a
// symlink between two configfs items is how LUNs and mapped LUNs are made,
// and rmdir fails with EBUSY while a symlink points at the item. lio relies
// on exactly these calls, so an implementation can
//   - go to the kernel (OSFS, the default),
//   - enforce the same rules over a temporary directory (package
//     lio/configfstest), or
//   - record what would be done without doing it (Recorder, for dry runs).
//
// Errors should wrap the errno (unix.EBUSY, unix.ENOENT, ...) so that
// errors.Is works on them.
type FS interface {
	// Mkdir creates one directory (a configfs group).
	Mkdir(path string) error
	// Rmdir removes one directory (a configfs group).
	Rmdir(path string) error
	// Symlink creates link pointing at target (an absolute path).
	Symlink(target, link string) error
	// Remove unlinks a symlink.
	Remove(path string) error
	// WriteFile writes data to an existing attribute in a single write.
	WriteFile(path string, data []byte) error
	// ReadFile reads a whole attribute.
	ReadFile(path string) ([]byte, error)
	// ReadDir lists a directory, sorted by name.
	ReadDir(path string) ([]fs.DirEntry, error)
	// Readlink returns the target of a symlink as stored (configfs returns
	// relative targets).
	Readlink(path string) (string, error)
	// Lstat describes path without following a final symlink.
	Lstat(path string) (fs.FileInfo, error)
}

// OSFS is the FS over the real configfs, through the os package.
type OSFS struct{}

// Mkdir implements FS.
func (OSFS) Mkdir(path string) error { return os.Mkdir(path, 0o755) }

// Rmdir implements FS with rmdir(2) alone, never a recursive removal:
// os.Remove would fall back to unlink and mask the errno configfs returns
// (EBUSY, ENOTEMPTY, EPERM).
func (OSFS) Rmdir(path string) error {
	if err := unix.Rmdir(path); err != nil {
		return &os.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

// Symlink implements FS.
func (OSFS) Symlink(target, link string) error { return os.Symlink(target, link) }

// Remove implements FS.
func (OSFS) Remove(path string) error { return os.Remove(path) }

// WriteFile implements FS: open without O_CREAT or O_TRUNC (configfs
// attributes cannot be created and ignore truncation) and write once, since
// configfs hands each write(2) to the kernel's store function separately.
func (OSFS) WriteFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// ReadFile implements FS with one read (attr.Read: configfs renders an
// attribute whole).
func (OSFS) ReadFile(path string) ([]byte, error) { return attr.Read(path) }

// ReadDir implements FS.
func (OSFS) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(path) }

// Readlink implements FS.
func (OSFS) Readlink(path string) (string, error) { return os.Readlink(path) }

// Lstat implements FS.
func (OSFS) Lstat(path string) (fs.FileInfo, error) { return os.Lstat(path) }
