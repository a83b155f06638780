package dm

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestMain fails the package if a kernel test leaks a dm device or a loop
// device (inside the lab VM only).
func TestMain(m *testing.M) { os.Exit(vmtest.LeakCheck(m)) }

// kernelClient opens the real control node; kernel tests only.
func kernelClient(t *testing.T) *Client {
	t.Helper()
	vmtest.Require(t)
	c, err := Open(Options{})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// kctx is a test context with a generous deadline for the emulated VM.
func kctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// names returns a random lunferry device name and its uuid.
func names(tag string) (string, string) {
	n := vmtest.RandomName("lunferry-dmt-" + tag)
	return n, "LUNFERRY-" + strings.TrimPrefix(n, NamePrefix)
}

// loop attaches a loop device of size bytes filled with seeded random data
// (seed 0: zeros) and returns its path, its MAJ:MIN and the content.
func loop(t *testing.T, size int, seed uint64) (string, string, []byte) {
	t.Helper()
	dev := vmtest.LoopDevice(t, int64(size))
	data := make([]byte, size)
	if seed != 0 {
		r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1, 2, 3})
		_, _ = r.Read(data)
		require.NoError(t, writeDevice(dev, 0, data))
	}
	kind, d, err := statNode(dev)
	require.NoError(t, err)
	require.Equal(t, nodeBlock, kind)
	return dev, d.String(), data
}

// mustCreate creates a device and removes it at cleanup.
func mustCreate(t *testing.T, c *Client, name, uuid string, tbl Table) Info {
	t.Helper()
	info, err := c.Create(kctx(t), name, uuid, tbl)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := c.Remove(context.Background(), name, RemoveOptions{Force: true, Retries: 10}); err != nil && !isNotFound(err) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return info
}

func isNotFound(err error) bool {
	return errors.Is(err, ErrNotFound)
}

// dmsetup runs dmsetup, the independent reader.
func dmsetup(t *testing.T, args ...string) string {
	t.Helper()
	return strings.TrimSpace(vmtest.Exec(t, "dmsetup", args...))
}

// alignedBuf returns a page-aligned buffer for O_DIRECT.
func alignedBuf(t testing.TB, n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

// writeDevice writes data at off and syncs.
func writeDevice(path string, off int64, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		return err
	}
	return f.Sync()
}

// readDirect reads n bytes at 0 with O_DIRECT, bypassing the page cache.
func readDirect(t *testing.T, path string, n int) []byte {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	require.NoError(t, err, path)
	defer unix.Close(fd)
	buf := alignedBuf(t, n)
	for off := 0; off < n; {
		m, err := unix.Pread(fd, buf[off:], int64(off))
		require.NoError(t, err)
		require.NotZero(t, m, "short read of %s at %d", path, off)
		off += m
	}
	return append([]byte(nil), buf...)
}

// firstDiff describes where two byte slices differ.
func firstDiff(a, b []byte) string {
	if len(a) != len(b) {
		return "lengths differ"
	}
	for i := range a {
		if a[i] != b[i] {
			return "first difference at byte " + strconv.Itoa(i)
		}
	}
	return "equal"
}

// sameBytes fails t with the first difference.
func sameBytes(t *testing.T, want, got []byte, what string) {
	t.Helper()
	if !bytes.Equal(want, got) {
		t.Fatalf("%s: data differs: %s", what, firstDiff(want, got))
	}
}
