package loop_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/internal/loop"
)

// TestKernelAttachFile: the file is attached once (a second AttachFile
// finds the same loop device through sysfs), zeroed only when asked,
// detached and deleted.
func TestKernelAttachFile(t *testing.T) {
	vmtest.Require(t)
	ctx := context.Background()
	var d loop.Devices
	path := filepath.Join(t.TempDir(), "state", "metadata", "v.meta")
	t.Cleanup(func() { _ = d.DetachFile(path, true) })

	dev, err := d.AttachFile(ctx, path, 4<<20, true)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, int64(4<<20), st.Size())

	// Write a fake superblock through the loop device.
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{0xab}, 4096), 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	f.Close()

	// Restore: same device, not zeroed.
	dev2, err := d.AttachFile(ctx, path, 4<<20, false)
	require.NoError(t, err)
	require.Equal(t, dev, dev2)
	head := make([]byte, 4096)
	f, err = os.Open(path)
	require.NoError(t, err)
	_, err = f.ReadAt(head, 0)
	f.Close()
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{0xab}, 4096), head, "restore keeps the metadata")

	// Detached: a new attach zeroes when asked.
	require.NoError(t, d.DetachFile(path, false))
	dev3, err := d.AttachFile(ctx, path, 4<<20, true)
	require.NoError(t, err)
	f, err = os.Open(dev3)
	require.NoError(t, err)
	_, err = f.ReadAt(head, 0)
	f.Close()
	require.NoError(t, err)
	require.Equal(t, make([]byte, 4096), head, "fresh metadata is zeroed")

	require.NoError(t, d.DetachFile(path, true))
	_, err = os.Stat(path)
	require.True(t, os.IsNotExist(err))
	require.NoError(t, d.DetachFile(path, true), "detaching twice is fine")
}
