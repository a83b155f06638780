package vm

import (
	"fmt"
	"io"
	"strings"
)

// cpioWriter writes a cpio archive in the "newc" (SVR4, no CRC) format the
// kernel unpacks as an initramfs. Each record is a 110-byte ASCII header
// ("070701" then 13 eight-digit hex fields: ino, mode, uid, gid, nlink,
// mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize,
// check), the NUL-terminated name padded to 4 bytes, then the data padded to
// 4 bytes. The archive ends with the name "TRAILER!!!".
//
// All entries are owned by root with mtime 0 so that the same inputs give the
// same bytes: no root is needed to build it.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	off int64
	err error
}

// Mode bits of the newc format (the same values as struct stat's st_mode).
const (
	cpioDir     = 0o040000
	cpioFile    = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.off += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.off % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// entry writes one record. rdev is only used for device nodes.
func (c *cpioWriter) entry(name string, mode uint32, data []byte, rdevMajor, rdevMinor uint32) {
	name = strings.TrimPrefix(name, "/")
	nlink := uint32(1)
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	if name != "TRAILER!!!" {
		c.ino++
	}
	ino := c.ino
	if name == "TRAILER!!!" {
		ino = 0
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad()
	c.write(data)
	c.pad()
}

// Dir adds a directory with permissions perm.
func (c *cpioWriter) Dir(name string, perm uint32) { c.entry(name, cpioDir|perm, nil, 0, 0) }

// File adds a regular file.
func (c *cpioWriter) File(name string, perm uint32, data []byte) {
	c.entry(name, cpioFile|perm, data, 0, 0)
}

// Symlink adds a symbolic link name -> target.
func (c *cpioWriter) Symlink(name, target string) {
	c.entry(name, cpioSymlink|0o777, []byte(target), 0, 0)
}

// CharDev adds a character device node (no root needed inside an archive).
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) {
	c.entry(name, cpioCharDev|perm, nil, major, minor)
}

// Close writes the trailer and returns the first error met.
func (c *cpioWriter) Close() error {
	c.entry("TRAILER!!!", 0, nil, 0, 0)
	return c.err
}
