package lio_test

import (
	"context"
	"io/fs"
	"path"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/lio/configfstest"
)

// unlink removes the symlinks in the directory rel and then the directory.
func unlink(t *testing.T, f *configfstest.FS, rel string) {
	t.Helper()
	dir := path.Join(f.Root, rel)
	ents, err := f.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink != 0 {
			require.NoError(t, f.Remove(path.Join(dir, e.Name())))
		}
	}
	require.NoError(t, f.Rmdir(dir))
}

// TestServes: a target serves the host only with its TPG enabled, a LUN
// over the block storage object of that name, holding the device (by path
// and by the numbers iblock opened), and the host's ACL mapping that LUN;
// each condition false once.
func TestServes(t *testing.T) {
	ctx := context.Background()
	e := export()
	e.ACLs = append(e.ACLs, lio.ACL{InitiatorIQN: hostB})
	serves := func(r *lio.Root, tag uint16, name, dev, host string) bool {
		t.Helper()
		ok, err := r.Target(tIQN).TPG(tag).Serves(name, dev, host)
		require.NoError(t, err)
		return ok
	}
	r, f := newRoot(t)
	require.False(t, serves(r, 1, e.Name, e.Device, hostA), "no target")
	require.NoError(t, r.Apply(ctx, e))
	require.True(t, serves(r, 1, e.Name, e.Device, hostA))
	require.True(t, serves(r, 1, e.Name, e.Device, hostB))

	require.False(t, serves(r, 2, e.Name, e.Device, hostA), "another TPG")
	require.False(t, serves(r, 1, "lunferry-other", e.Device, hostA), "another storage object")
	require.False(t, serves(r, 1, e.Name, "/dev/dm-7", hostA), "the object on another device path")
	require.False(t, serves(r, 1, e.Name, e.Device, "iqn.2026-11.io.example:host-c"), "no ACL for the host")

	unlink(t, f, tpg+"/acls/"+hostA+"/lun_0")
	require.False(t, serves(r, 1, e.Name, e.Device, hostA), "LUN not mapped to the host")
	require.True(t, serves(r, 1, e.Name, e.Device, hostB), "still mapped to the other host")

	require.NoError(t, r.Target(tIQN).TPG(1).SetEnabled(false))
	require.False(t, serves(r, 1, e.Name, e.Device, hostB), "TPG disabled")
	require.NoError(t, r.Target(tIQN).TPG(1).SetEnabled(true))
	require.True(t, serves(r, 1, e.Name, e.Device, hostB))

	unlink(t, f, tpg+"/acls/"+hostB+"/lun_0")
	unlink(t, f, tpg+"/lun/lun_0")
	require.False(t, serves(r, 1, e.Name, e.Device, hostB), "no LUN")

	// The right path, opened as another device: the fake's iblock opens
	// 254:0, /dev/null is 1:3.
	r, _ = newRoot(t)
	e = export()
	e.Device = "/dev/null"
	require.NoError(t, r.Apply(ctx, e))
	require.False(t, serves(r, 1, e.Name, e.Device, hostA), "the object holds another device")

	// A fileio object of that name is not lunferry's block object.
	r, _ = newRoot(t)
	e = export()
	e.Backstore, e.Device, e.Size = lio.BackstoreFileIO, "/srv/lun.img", 64<<20
	require.NoError(t, r.Apply(ctx, e))
	require.False(t, serves(r, 1, e.Name, e.Device, hostA), "a fileio object")
}
