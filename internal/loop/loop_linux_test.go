package loop

import (
	"bytes"
	"errors"
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
