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

// soPath returns the configfs path, relative to the root, of the block
// storage object name.
func soPath(t *testing.T, f *configfstest.FS, name string) string {
	t.Helper()
	hbas, err := f.ReadDir(path.Join(f.Root, "core"))
	require.NoError(t, err)
	for _, h := range hbas {
		if _, err := f.Lstat(path.Join(f.Root, "core", h.Name(), name)); err == nil {
			return path.Join("core", h.Name(), name)
		}
	}
	t.Fatalf("no storage object %s", name)
	return ""
}

// TestServesByWhatIblockOpened: Serves reads the device from the object's
// info (the path iblock opened it by), not from the udev_path attribute,
// a label the kernel opens nothing by: a label rewritten does not stop
// the export serving, and an object opened by another path under the
// right label does not serve (it did while the check read the label).
func TestServesByWhatIblockOpened(t *testing.T) {
	ctx := context.Background()
	t.Run("label rewritten", func(t *testing.T) {
		r, f := newRoot(t)
		e := export()
		require.NoError(t, r.Apply(ctx, e))
		require.NoError(t, f.WriteFile(path.Join(f.Root, soPath(t, f, e.Name), "udev_path"), []byte("/dev/dm-9")))
		ok, err := r.Target(tIQN).TPG(1).Serves(e.Name, e.Device, hostA)
		require.NoError(t, err)
		require.True(t, ok, "iblock holds %s whatever the label says", e.Device)
	})
	t.Run("opened by another path", func(t *testing.T) {
		r, f := newRoot(t)
		e := export()
		e.Device = "/dev/dm-8"
		require.NoError(t, r.Apply(ctx, e))
		require.NoError(t, f.WriteFile(path.Join(f.Root, soPath(t, f, e.Name), "udev_path"), []byte("/dev/dm-3")))
		ok, err := r.Target(tIQN).TPG(1).Serves(e.Name, "/dev/dm-3", hostA)
		require.NoError(t, err)
		require.False(t, ok, "opened by /dev/dm-8, labelled /dev/dm-3")
	})
}

// TestServesLinksNamedOtherwise: links another tool named (targetcli's
// restore keeps any alias) are found by listing, and a LUN mapped under
// another index still counts.
func TestServesLinksNamedOtherwise(t *testing.T) {
	ctx := context.Background()
	r, f := newRoot(t)
	e := export()
	require.NoError(t, r.Apply(ctx, e))
	serves := func() bool {
		t.Helper()
		ok, err := r.Target(tIQN).TPG(1).Serves(e.Name, e.Device, hostA)
		require.NoError(t, err)
		return ok
	}
	require.True(t, serves())

	// The mapping first: the TPG LUN cannot go while a mapping points at it.
	acl := path.Join(f.Root, tpg, "acls", hostA)
	unlink(t, f, tpg+"/acls/"+hostA+"/lun_0")
	require.False(t, serves())
	lun := path.Join(f.Root, tpg, "lun", "lun_0")
	require.NoError(t, f.Remove(path.Join(lun, e.Name)))
	require.NoError(t, f.Symlink(path.Join(f.Root, soPath(t, f, e.Name)), path.Join(lun, "a1b2c3")))
	require.NoError(t, f.Mkdir(path.Join(acl, "lun_5")))
	require.NoError(t, f.Symlink(lun, path.Join(acl, "lun_5", "d4e5f6")))
	require.True(t, serves(), "LUN link a1b2c3, mapped LUN 5 through link d4e5f6")

	// A link of lunferry's name that points elsewhere does not count.
	so2 := path.Join(f.Root, path.Dir(soPath(t, f, e.Name)), "lunferry-vol2")
	require.NoError(t, f.Mkdir(so2))
	require.NoError(t, f.WriteFile(path.Join(so2, "control"), []byte("udev_path=/dev/dm-4")))
	require.NoError(t, f.WriteFile(path.Join(so2, "enable"), []byte("1")))
	require.NoError(t, f.Mkdir(path.Join(f.Root, tpg, "lun", "lun_1")))
	require.NoError(t, f.Symlink(so2, path.Join(f.Root, tpg, "lun", "lun_1", e.Name)))
	unlink(t, f, tpg+"/acls/"+hostA+"/lun_5")
	require.NoError(t, f.Mkdir(path.Join(acl, "lun_5")))
	require.NoError(t, f.Symlink(path.Join(f.Root, tpg, "lun", "lun_1"), path.Join(acl, "lun_5", e.Name)))
	require.False(t, serves(), "mapped LUN 5 is the other object's LUN, though its links bear lunferry-vol1's name")
}
