package dm

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDMSysfs adds dm-N entries for a device to a fake sysfs tree.
func fakeDMSysfs(t *testing.T, sys, kname, name string, d DevNum) {
	t.Helper()
	blk := filepath.Join(sys, "devices", "virtual", "block", kname)
	require.NoError(t, os.MkdirAll(filepath.Join(blk, "dm"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(blk, "dm", "name"), []byte(name+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(blk, "dev"), []byte(d.String()+"\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "block"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "dev", "block"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join("..", "devices", "virtual", "block", kname), filepath.Join(sys, "block", kname)))
	require.NoError(t, os.Symlink(filepath.Join("..", "..", "devices", "virtual", "block", kname), filepath.Join(sys, "dev", "block", d.String())))
}

func TestDevicePathSysfsAndUdev(t *testing.T) {
	k := newFakeKernel()
	sys := fakeSys(t, testSizes)
	dev, run := t.TempDir(), t.TempDir()
	c := newClient(Options{SysRoot: sys, DevRoot: dev, RunRoot: run, UdevWait: 100 * time.Millisecond}, k, nil)
	ctx := context.Background()
	info, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", linearTable())
	require.NoError(t, err)

	for _, bad := range []string{"", "a/b", "..", "."} {
		_, err := c.DevicePath(bad)
		assert.Error(t, err, "%q", bad)
	}
	_, err = c.DevicePath("lunferry-missing")
	assert.ErrorIs(t, err, ErrNotFound)

	// Not in sysfs (yet).
	_, err = c.DevicePath("lunferry-a")
	assert.ErrorContains(t, err, "sysfs")

	// sysfs names another device: refuse rather than make a wrong node.
	fakeDMSysfs(t, sys, "dm-0", "lunferry-other", info.Dev)
	_, err = c.DevicePath("lunferry-a")
	assert.ErrorContains(t, err, `sysfs dm-0 is device "lunferry-other"`)
	require.NoError(t, os.WriteFile(filepath.Join(sys, "devices", "virtual", "block", "dm-0", "dm", "name"), []byte("lunferry-a\n"), 0o644))
	kname, err := c.sysfsName("lunferry-a", info.Dev)
	require.NoError(t, err)
	assert.Equal(t, "dm-0", kname)

	// With udev running, DevicePath waits for udev and never makes a node.
	require.NoError(t, os.MkdirAll(filepath.Join(run, "udev"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(run, "udev", "control"), nil, 0o600))
	start := time.Now()
	_, err = c.DevicePath("lunferry-a")
	assert.ErrorContains(t, err, "udevadm")
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "waited UdevWait")
	_, err = os.Lstat(filepath.Join(dev, "mapper", "lunferry-a"))
	assert.True(t, os.IsNotExist(err), "no node made while udev runs")
}

func TestDeviceSize(t *testing.T) {
	c := newClient(Options{SysRoot: fakeSys(t, map[string]Sectors{"8:16": 4096})}, newFakeKernel(), nil)
	n, err := c.deviceSize("8:16")
	require.NoError(t, err)
	assert.Equal(t, Sectors(4096), n)
	_, err = c.deviceSize("8:32")
	assert.Error(t, err)
	_, err = c.deviceSize(filepath.Join(t.TempDir(), "nope"))
	assert.ErrorContains(t, err, "does not exist")
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	_, err = c.deviceSize(f)
	assert.ErrorContains(t, err, "not a block device")
}
