package loop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestCreateAllocated: the file and its directory are made with every
// block allocated; a smaller file grows, a larger one is kept as it is, and
// its data stays.
func TestCreateAllocated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata", "v.meta")
	f, err := createAllocated(path, 1<<20)
	require.NoError(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{0xab}, HeadBytes), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), st.Size())
	require.GreaterOrEqual(t, st.Sys().(*syscall.Stat_t).Blocks*512, int64(1<<20), "allocated, not sparse")
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	dir, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), dir.Mode().Perm())

	f, err = createAllocated(path, 2<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	f, err = createAllocated(path, 4096)
	require.NoError(t, err)
	st, err = f.Stat()
	require.NoError(t, err)
	require.Equal(t, int64(2<<20), st.Size(), "never shrunk")
	head := make([]byte, HeadBytes)
	_, err = f.ReadAt(head, 0)
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{0xab}, HeadBytes), head, "data kept")

	require.NoError(t, zeroHead(f))
	_, err = f.ReadAt(head, 0)
	require.NoError(t, err)
	require.Equal(t, make([]byte, HeadBytes), head)
	require.NoError(t, f.Close())
}

// TestZeroDevice: too small is a *TooSmallError and nothing is written;
// large enough is zeroed (a regular file stands in for the device).
func TestZeroDevice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte{0xab}, 2*HeadBytes), 0o600))

	err := ZeroDevice(path, 3*HeadBytes)
	var small *TooSmallError
	require.True(t, errors.As(err, &small), "%v", err)
	require.Equal(t, TooSmallError{Device: path, Size: 2 * HeadBytes, Need: 3 * HeadBytes}, *small)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{0xab}, 2*HeadBytes), b)

	require.NoError(t, ZeroDevice(path, 2*HeadBytes))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, append(make([]byte, HeadBytes), bytes.Repeat([]byte{0xab}, HeadBytes)...), b)

	require.ErrorContains(t, ZeroDevice(filepath.Join(t.TempDir(), "missing"), 0), "is it in use?")
}

// TestAllocateRetriesInterruptedFallocate: a fallocate interrupted by a
// signal (Go's preemption) is retried, not reported (the lab's prepare
// failed with "interrupted system call").
func TestAllocateRetriesInterruptedFallocate(t *testing.T) {
	calls := 0
	real := fallocate
	fallocate = func(fd int, mode uint32, off, n int64) error {
		calls++
		if calls <= 2 {
			return unix.EINTR
		}
		return real(fd, mode, off, n)
	}
	defer func() { fallocate = real }()
	f, err := os.Create(filepath.Join(t.TempDir(), "m"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, allocate(f, 1<<20))
	require.Equal(t, 3, calls)
	st, err := f.Stat()
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), st.Size())
}

// TestFindThroughSysfs: Find and a View read the backing files sysfs
// shows for attached devices only (a deleted file keeps its name), the
// lowest-numbered device of a file attached twice; a View scans once.
func TestFindThroughSysfs(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	attach := func(n int, file string) {
		d := filepath.Join(sys, "block", fmt.Sprintf("loop%d", n), "loop")
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "backing_file"), []byte(file+"\n"), 0o644))
	}
	for n := 0; n < 12; n++ {
		require.NoError(t, os.MkdirAll(filepath.Join(sys, "block", fmt.Sprintf("loop%d", n)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dev, fmt.Sprintf("loop%d", n)), nil, 0o600)) // the node: no mknod
	}
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "block", "sda"), 0o755))
	attach(3, "/state/metadata/a.meta")
	attach(10, "/state/metadata/b.meta (deleted)")
	attach(11, "/state/metadata/a.meta")
	d := Devices{SysRoot: sys, DevRoot: dev}
	v := d.View()
	for file, want := range map[string]string{"/state/metadata/a.meta": "loop3", "/state/metadata/b.meta": "loop10", "/state/metadata/c.meta": ""} {
		got, ok, err := d.Find(file)
		require.NoError(t, err)
		require.Equal(t, want != "", ok, file)
		if ok {
			require.Equal(t, filepath.Join(dev, want), got, file)
		}
		vgot, vok, err := v.Find(file)
		require.NoError(t, err)
		require.Equal(t, got, vgot, file)
		require.Equal(t, ok, vok, file)
	}
	// The view does not see what was attached after its scan; Find does.
	attach(5, "/state/metadata/c.meta")
	_, ok, err := v.Find("/state/metadata/c.meta")
	require.NoError(t, err)
	require.False(t, ok)
	got, ok, err := d.Find("/state/metadata/c.meta")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, filepath.Join(dev, "loop5"), got)
}
