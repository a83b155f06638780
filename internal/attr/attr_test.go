package attr

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 23, bufSize - 1, bufSize, bufSize + 1, 3*bufSize + 5} {
		p := filepath.Join(dir, "a")
		want := bytes.Repeat([]byte("x"), size)
		require.NoError(t, os.WriteFile(p, want, 0o644))
		got, err := Read(p)
		require.NoError(t, err, "size %d", size)
		require.Equal(t, want, got, "size %d", size)
	}
	_, err := Read(filepath.Join(dir, "none"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "open", pe.Op)
	_, err = Read(dir)
	require.ErrorIs(t, err, unix.EISDIR)
}

// TestReadSysfs: an attribute of the running kernel reads as os.ReadFile
// reads it.
func TestReadSysfs(t *testing.T) {
	read := 0
	for _, p := range []string{"/sys/devices/system/cpu/online", "/sys/devices/system/cpu/possible", "/sys/kernel/mm/transparent_hugepage/enabled"} {
		want, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		got, err := Read(p)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), p)
		read++
	}
	if read == 0 {
		t.Skip("no sysfs")
	}
}
