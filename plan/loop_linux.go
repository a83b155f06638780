package plan

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

	"golang.org/x/sys/unix"
)

// loopMajor is the block major of loop devices.
const loopMajor = 7

// LoopMetadata makes dm-clone metadata devices from files under the state
// directory, attached to loop devices with the loop ioctls (LOOP_CTL_GET_FREE,
// LOOP_CONFIGURE, LOOP_CLR_FD). It finds a file's loop device through sysfs
// (/sys/block/loopN/loop/backing_file) and makes /dev/loopN when it is
// missing (no udev).
type LoopMetadata struct {
	// SysRoot is sysfs (empty: /sys).
	SysRoot string
	// DevRoot is the device directory (empty: /dev).
	DevRoot string
}

func (l LoopMetadata) sys() string {
	if l.SysRoot == "" {
		return "/sys"
	}
	return l.SysRoot
}

func (l LoopMetadata) dev() string {
	if l.DevRoot == "" {
		return "/dev"
	}
	return l.DevRoot
}

// zeroHead clears the first 4 KiB of f and syncs it: dm-clone then sees no
// superblock and formats fresh metadata.
func zeroHead(f *os.File) error {
	if _, err := f.WriteAt(make([]byte, 4096), 0); err != nil {
		return err
	}
	return f.Sync()
}

// CreateFile implements MetadataDevices.
func (l LoopMetadata) CreateFile(ctx context.Context, path string, size uint64, zero bool) (string, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("plan: metadata directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("plan: metadata file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("plan: metadata file: %w", err)
	}
	if uint64(st.Size()) < size {
		// Sparse: the space is used as dm-clone writes metadata.
		if err := f.Truncate(int64(size)); err != nil {
			return "", fmt.Errorf("plan: size metadata file %s: %w", path, err)
		}
	}
	if zero {
		if err := zeroHead(f); err != nil {
			return "", fmt.Errorf("plan: zero metadata file %s: %w", path, err)
		}
	}
	if dev, ok, err := l.find(path); err != nil {
		return "", err
	} else if ok {
		return dev, nil
	}
	return l.attach(ctx, f, path)
}

// find returns the loop device backed by path.
func (l LoopMetadata) find(path string) (string, bool, error) {
	matches, err := filepath.Glob(filepath.Join(l.sys(), "block", "loop*", "loop", "backing_file"))
	if err != nil {
		return "", false, err
	}
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue // detached while we looked
		}
		bf := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if bf == path {
			name := filepath.Base(filepath.Dir(filepath.Dir(m)))
			n, err := strconv.Atoi(strings.TrimPrefix(name, "loop"))
			if err != nil {
				continue
			}
			dev, err := l.node(n)
			return dev, err == nil, err
		}
	}
	return "", false, nil
}

// node returns /dev/loopN, making it when missing.
func (l LoopMetadata) node(n int) (string, error) {
	p := filepath.Join(l.dev(), "loop"+strconv.Itoa(n))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(loopMajor, uint32(n)))); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("plan: make %s: %w", p, err)
	}
	return p, nil
}

func (l LoopMetadata) attach(ctx context.Context, f *os.File, path string) (string, error) {
	ctlPath := filepath.Join(l.dev(), "loop-control")
	ctl, err := os.OpenFile(ctlPath, os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("plan: open %s: %w (is the loop module loaded? modprobe loop)", ctlPath, err)
	}
	defer ctl.Close()
	for attempt := 0; attempt < 10; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", fmt.Errorf("plan: find a free loop device: %w", err)
		}
		dev, err := l.node(n)
		if err != nil {
			return "", err
		}
		lf, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return "", fmt.Errorf("plan: open %s: %w", dev, err)
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
			return "", fmt.Errorf("plan: attach %s to %s: %w", path, dev, err)
		}
		return dev, nil
	}
	return "", fmt.Errorf("plan: attach %s: every free loop device was taken before we could use it; retry", path)
}

// DetachFile implements MetadataDevices.
func (l LoopMetadata) DetachFile(ctx context.Context, path string, remove bool) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dev, ok, err := l.find(path)
	if err != nil {
		return err
	}
	if ok {
		lf, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("plan: open %s: %w", dev, err)
		}
		err = unix.IoctlSetInt(int(lf.Fd()), unix.LOOP_CLR_FD, 0)
		lf.Close()
		if err != nil && !errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("plan: detach %s from %s: %w (still in use by a dm device?)", path, dev, err)
		}
	}
	if remove {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("plan: delete metadata file: %w", err)
		}
	}
	return nil
}

// ZeroDevice implements MetadataDevices.
func (l LoopMetadata) ZeroDevice(ctx context.Context, dev string, minSize uint64) error {
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("plan: open metadata device %s: %w (is it in use?)", dev, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("plan: size of %s: %w", dev, err)
	}
	if uint64(size) < minSize {
		return fmt.Errorf("plan: metadata device %s holds %d bytes, the volume needs %d (%s): give a larger device", dev, size, minSize, Bytes(minSize))
	}
	if err := zeroHead(f); err != nil {
		return fmt.Errorf("plan: zero %s: %w", dev, err)
	}
	return nil
}
