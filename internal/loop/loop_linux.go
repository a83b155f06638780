package loop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/internal/attr"
)

// major is the block major of loop devices.
const major = 7

func (d Devices) sys() string {
	if d.SysRoot == "" {
		return "/sys"
	}
	return d.SysRoot
}

func (d Devices) dev() string {
	if d.DevRoot == "" {
		return "/dev"
	}
	return d.DevRoot
}

// createAllocated opens path read-write, creating it (and its directory)
// when missing, and grows it to size bytes when it is smaller, with every
// block allocated: a sparse file on a filesystem that fills up later would
// fail dm-clone's metadata writes mid-hydration (the clone turns faulty),
// so a full filesystem is found here, at prepare, instead.
func createAllocated(path string, size uint64) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("loop: directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("loop: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("loop: stat %s: %w", path, err)
	}
	if uint64(st.Size()) < size {
		if err := allocate(f, size); err != nil {
			f.Close()
			return nil, fmt.Errorf("loop: allocate %d bytes for %s: %w", size, path, err)
		}
	}
	return f, nil
}

// fallocate is unix.Fallocate (a variable for tests).
var fallocate = unix.Fallocate

// allocate gives f size bytes, all allocated; where the filesystem has no
// fallocate, it writes zeroes. An interrupted fallocate is retried: Go's
// runtime preempts goroutines with signals, which interrupt a long one
// (seen in the lab on a RAM-backed filesystem: prepare failed).
func allocate(f *os.File, size uint64) error {
	err := fallocate(int(f.Fd()), 0, 0, int64(size))
	for errors.Is(err, unix.EINTR) {
		err = fallocate(int(f.Fd()), 0, 0, int64(size))
	}
	if !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zero := make([]byte, 1<<20)
	for off := st.Size(); uint64(off) < size; off += int64(len(zero)) {
		n := min(uint64(len(zero)), size-uint64(off))
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// zeroHead clears the first HeadBytes of f and syncs it.
func zeroHead(f *os.File) error {
	if _, err := f.WriteAt(make([]byte, HeadBytes), 0); err != nil {
		return err
	}
	return f.Sync()
}

// AttachFile makes path a file of at least size bytes (allocated, mode
// 0600 in a 0700 directory, when missing; grown when smaller), clears its
// first HeadBytes when zero is set, and returns the loop device backed by
// it, attaching a free one when there is none.
func (d Devices) AttachFile(ctx context.Context, path string, size uint64, zero bool) (string, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	f, err := createAllocated(path, size)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if zero {
		if err := zeroHead(f); err != nil {
			return "", fmt.Errorf("loop: zero %s: %w", path, err)
		}
	}
	if dev, ok, err := d.Find(path); err != nil || ok {
		return dev, err
	}
	return d.attach(ctx, f, path)
}

// AttachExisting returns the loop device backed by the existing file at
// path, attaching a free one when there is none. It never creates,
// extends or clears the file: a missing one is an error wrapping
// os.ErrNotExist, one shorter than size a *ShortFileError.
func (d Devices) AttachExisting(ctx context.Context, path string, size uint64) (string, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("loop: open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("loop: stat %s: %w", path, err)
	}
	if uint64(st.Size()) < size {
		return "", &ShortFileError{Path: path, Size: uint64(st.Size()), Want: size}
	}
	if dev, ok, err := d.Find(path); err != nil || ok {
		return dev, err
	}
	return d.attach(ctx, f, path)
}

// ReadHead reads the first n bytes of the block device dev with O_DIRECT,
// past any cached copy: what the kernel wrote through another path (a dm
// target's own I/O) is what it returns.
func ReadHead(dev string, n int) ([]byte, error) {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil, fmt.Errorf("loop: open %s: %w", dev, err)
	}
	defer f.Close()
	const align = 4096
	raw := make([]byte, n+align)
	off := int(uintptr(unsafe.Pointer(&raw[0])) & (align - 1))
	buf := raw[(align-off)%align:][:n]
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("loop: read %s: %w", dev, err)
	}
	return buf, nil
}

// scan reads the backing file of every attached loop device
// (/sys/block/loopN/loop/backing_file, which only an attached device
// has), by file; the lowest-numbered device of a file attached twice.
func (d Devices) scan() (map[string]int, error) {
	block := filepath.Join(d.sys(), "block")
	ents, err := os.ReadDir(block)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loop: list block devices: %w", err)
	}
	out := map[string]int{}
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), "loop")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			continue
		}
		b, err := attr.Read(filepath.Join(block, e.Name(), "loop", "backing_file"))
		if err != nil {
			continue // not attached, or detached while we looked
		}
		file := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if cur, dup := out[file]; !dup || n < cur {
			out[file] = n
		}
	}
	return out, nil
}

// node returns /dev/loopN, making it when missing.
func (d Devices) node(n int) (string, error) {
	p := filepath.Join(d.dev(), "loop"+strconv.Itoa(n))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(major, uint32(n)))); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("loop: make %s: %w", p, err)
	}
	return p, nil
}

// attach attaches f (opened from path) to a free loop device.
func (d Devices) attach(ctx context.Context, f *os.File, path string) (string, error) {
	ctlPath := filepath.Join(d.dev(), "loop-control")
	ctl, err := os.OpenFile(ctlPath, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("loop: open %s: %w (is the loop module loaded? modprobe loop)", ctlPath, err)
	}
	defer ctl.Close()
	for attempt := 0; attempt < 10; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", fmt.Errorf("loop: find a free loop device: %w", err)
		}
		dev, err := d.node(n)
		if err != nil {
			return "", err
		}
		lf, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return "", fmt.Errorf("loop: open %s: %w", dev, err)
		}
		cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
		copy(cfg.Info.File_name[:], path)
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		lf.Close()
		if errors.Is(err, unix.EBUSY) {
			// Taken by someone else between GET_FREE and CONFIGURE.
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return "", fmt.Errorf("loop: attach %s to %s: %w", path, dev, err)
		}
		return dev, nil
	}
	return "", fmt.Errorf("loop: attach %s: every free loop device was taken before we could use it; retry", path)
}

// DetachFile detaches the loop device backed by path, if any, and deletes
// the file when remove is set.
func (d Devices) DetachFile(path string, remove bool) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dev, ok, err := d.Find(path)
	if err != nil {
		return err
	}
	if ok {
		lf, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("loop: open %s: %w", dev, err)
		}
		err = unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
		lf.Close()
		// ENXIO: detached meanwhile.
		if err != nil && !errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("loop: detach %s from %s: %w (still in use by a dm device?)", path, dev, err)
		}
	}
	if remove {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("loop: delete %s: %w", path, err)
		}
	}
	return nil
}

// ZeroDevice opens the block device dev exclusively (it fails while
// anything holds it), checks that it holds at least minSize bytes (a
// *TooSmallError otherwise) and clears its first HeadBytes.
func ZeroDevice(dev string, minSize uint64) error {
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("loop: open %s: %w (is it in use?)", dev, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("loop: size of %s: %w", dev, err)
	}
	if uint64(size) < minSize {
		return &TooSmallError{Device: dev, Size: uint64(size), Need: minSize}
	}
	if err := zeroHead(f); err != nil {
		return fmt.Errorf("loop: zero %s: %w", dev, err)
	}
	return nil
}
