//go:build linux

// Package opencount counts the files and directories opened under
// directory trees, through inotify, without root: tests use it to bound
// what a pass over sysfs or configfs trees (real ones or fakes in a
// temporary directory) opens, as `strace -e trace=openat` would show it.
//
//	c, err := opencount.Watch(sysRoot, configfsRoot)
//	... the pass ...
//	opens, err := c.Take() // path -> times opened
//
// Directories made after Watch are not watched.
package opencount

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Counter watches directory trees for opens.
type Counter struct {
	fd   int
	dirs map[int32]string
}

// Watch starts counting the opens of every file and directory under the
// roots (symlinks are not followed: watch their targets' trees too).
func Watch(roots ...string) (*Counter, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("opencount: inotify: %w", err)
	}
	c := &Counter{fd: fd, dirs: map[int32]string{}}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			wd, err := unix.InotifyAddWatch(fd, p, unix.IN_OPEN|unix.IN_ONLYDIR)
			if err != nil {
				return fmt.Errorf("opencount: watch %s: %w", p, err)
			}
			c.dirs[int32(wd)] = p
			return nil
		})
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	// The walk itself opened the directories.
	if _, err := c.Take(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Take returns the opens since Watch or the last Take, by path. A
// directory opened counts once (inotify reports it to itself and to its
// parent).
func (c *Counter) Take() (map[string]int, error) {
	out := map[string]int{}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(c.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("opencount: read events: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				return nil, errors.New("opencount: inotify queue overflowed: count fewer opens at a time")
			}
			dir, ok := c.dirs[ev.Wd]
			if !ok {
				continue
			}
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			switch {
			case len(name) == 0:
				out[dir]++ // the watched directory itself
			case ev.Mask&unix.IN_ISDIR == 0:
				out[filepath.Join(dir, string(name))]++
			}
		}
	}
}

// Total adds up opens.
func Total(opens map[string]int) int {
	n := 0
	for _, k := range opens {
		n += k
	}
	return n
}

// Close stops counting.
func (c *Counter) Close() error { return unix.Close(c.fd) }
