package configfstest_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/lio/configfstest"
)

// build makes an enabled iblock storage object and an iSCSI TPG with one
// LUN exporting it and one ACL mapping it.
func build(t *testing.T) (*configfstest.FS, func(string) string) {
	f := configfstest.New(t)
	p := func(rel string) string { return path.Join(f.Root, rel) }
	for _, d := range []string{"core/iblock_0", "core/iblock_0/so", "iscsi", "iscsi/iqn.2026-11.io.x:t", "iscsi/iqn.2026-11.io.x:t/tpgt_1",
		"iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_0", "iscsi/iqn.2026-11.io.x:t/tpgt_1/acls/iqn.2026-11.io.x:h",
		"iscsi/iqn.2026-11.io.x:t/tpgt_1/acls/iqn.2026-11.io.x:h/lun_0"} {
		require.NoError(t, f.Mkdir(p(d)), d)
	}
	require.NoError(t, f.WriteFile(p("core/iblock_0/so/control"), []byte("udev_path=/dev/x")))
	require.NoError(t, f.WriteFile(p("core/iblock_0/so/enable"), []byte("1")))
	require.NoError(t, f.Symlink(p("core/iblock_0/so"), p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_0/a")))
	require.NoError(t, f.Symlink(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_0"), p("iscsi/iqn.2026-11.io.x:t/tpgt_1/acls/iqn.2026-11.io.x:h/lun_0/b")))
	return f, p
}

func TestDefaultGroups(t *testing.T) {
	f, p := build(t)
	for _, d := range []string{"lun", "np", "acls", "attrib", "auth", "param"} {
		fi, err := f.Lstat(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/" + d))
		require.NoError(t, err, d)
		assert.True(t, fi.IsDir())
	}
	err := f.Rmdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/attrib"))
	assert.ErrorIs(t, err, unix.EPERM, "default groups cannot be removed")
	err = f.Mkdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/attrib/x"))
	assert.ErrorIs(t, err, unix.EPERM, "no mkdir in attribute groups")
}

func TestRmdirRules(t *testing.T) {
	f, p := build(t)
	assert.ErrorIs(t, f.Rmdir(p("core/iblock_0/so")), unix.EBUSY, "a LUN links to it")
	assert.ErrorIs(t, f.Rmdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_0")), unix.EBUSY, "a mapped LUN links to it")
	assert.ErrorIs(t, f.Rmdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/acls/iqn.2026-11.io.x:h/lun_0")), unix.ENOTEMPTY, "link inside")
	assert.ErrorIs(t, f.Rmdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1")), unix.ENOTEMPTY)
	assert.ErrorIs(t, f.Rmdir(p("core/iblock_0")), unix.ENOTEMPTY)

	// In the right order everything goes, attribute files included.
	require.NoError(t, f.Remove(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/acls/iqn.2026-11.io.x:h/lun_0/b")))
	require.NoError(t, f.Rmdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/acls/iqn.2026-11.io.x:h/lun_0")))
	require.NoError(t, f.Rmdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/acls/iqn.2026-11.io.x:h")))
	require.NoError(t, f.Remove(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_0/a")))
	require.NoError(t, f.Rmdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_0")))
	require.NoError(t, f.Rmdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1")))
	require.NoError(t, f.Rmdir(p("iscsi/iqn.2026-11.io.x:t")))
	require.NoError(t, f.Rmdir(p("core/iblock_0/so")))
	require.NoError(t, f.Rmdir(p("core/iblock_0")))
	assert.Equal(t, []string{"iscsi"}, f.Objects())
}

func TestAttributeModes(t *testing.T) {
	f, p := build(t)
	_, err := f.ReadFile(p("core/iblock_0/so/control"))
	assert.ErrorIs(t, err, unix.EACCES, "control is write-only")
	assert.ErrorIs(t, f.WriteFile(p("core/iblock_0/so/info"), []byte("x")), unix.EACCES, "info is read-only")
	assert.ErrorIs(t, f.WriteFile(p("core/iblock_0/so/nope"), []byte("x")), unix.ENOENT, "attributes cannot be created")
	assert.ErrorIs(t, f.Remove(p("core/iblock_0/so/enable")), unix.EPERM, "attributes cannot be unlinked")
}

func TestStorageObjectRules(t *testing.T) {
	f, p := build(t)
	assert.ErrorIs(t, f.WriteFile(p("core/iblock_0/so/enable"), []byte("1")), unix.EEXIST, "enabled twice")
	assert.ErrorIs(t, f.WriteFile(p("core/iblock_0/so/control"), []byte("udev_path=/dev/y")), unix.EEXIST, "control after enable")
	assert.ErrorIs(t, f.WriteFile(p("core/iblock_0/so/wwn/vpd_unit_serial"), []byte("x")), unix.EINVAL, "exported")

	require.NoError(t, f.Mkdir(p("core/fileio_1")))
	require.NoError(t, f.Mkdir(p("core/fileio_1/f")))
	require.NoError(t, f.WriteFile(p("core/fileio_1/f/control"), []byte("fd_dev_name=/tmp/f")))
	assert.ErrorIs(t, f.WriteFile(p("core/fileio_1/f/enable"), []byte("1")), unix.EINVAL, "fileio on a file needs fd_dev_size")
	// Not enabled: a LUN cannot link to it.
	require.NoError(t, f.Mkdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_1")))
	assert.ErrorIs(t, f.Symlink(p("core/fileio_1/f"), p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_1/x")), unix.ENODEV)
	require.NoError(t, f.WriteFile(p("core/fileio_1/f/control"), []byte("fd_dev_size=4096")))
	require.NoError(t, f.WriteFile(p("core/fileio_1/f/enable"), []byte("1")))
	require.NoError(t, f.Symlink(p("core/fileio_1/f"), p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_1/x")))
	assert.ErrorIs(t, f.Symlink(p("core/fileio_1/f"), p("iscsi/iqn.2026-11.io.x:t/tpgt_1/lun/lun_1/y")), unix.EEXIST, "one link per LUN")
	b, err := f.ReadFile(p("core/fileio_1/f/info"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "File: /tmp/f  Size: 4096")
}

func TestNameParsing(t *testing.T) {
	f, p := build(t)
	tpg := "iscsi/iqn.2026-11.io.x:t/tpgt_1/"
	assert.ErrorIs(t, f.Mkdir(p("core/bogus")), unix.EINVAL)
	assert.ErrorIs(t, f.Mkdir(p("iscsi/iqn.2026-11.io.x:t/tpg1")), unix.EINVAL)
	assert.ErrorIs(t, f.Mkdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_70000")), unix.EINVAL)
	assert.ErrorIs(t, f.Mkdir(p(tpg+"lun/l0")), unix.EINVAL)
	assert.ErrorIs(t, f.Mkdir(p(tpg+"np/127.0.0.1")), unix.EINVAL)
	assert.ErrorIs(t, f.Mkdir(p(tpg+"np/::1:3260")), unix.EINVAL, "IPv6 needs brackets")
	require.NoError(t, f.Mkdir(p(tpg+"np/[::1]:3260")))
	assert.ErrorIs(t, f.Mkdir(p("sbp")), unix.ENOENT, "unknown fabric")
	// A mapped LUN can only point at a LUN of its own TPG.
	require.NoError(t, f.Mkdir(p(tpg+"acls/iqn.2026-11.io.x:h/lun_1")))
	assert.ErrorIs(t, f.Symlink(p("core/iblock_0/so"), p(tpg+"acls/iqn.2026-11.io.x:h/lun_1/z")), unix.EINVAL)
}

func TestSessionsAndDisable(t *testing.T) {
	f, p := build(t)
	tpg := "iscsi/iqn.2026-11.io.x:t/tpgt_1/"
	require.Error(t, f.LogIn("iqn.2026-11.io.x:t", 1, "iqn.2026-11.io.x:h"), "tpg not enabled")
	require.NoError(t, f.WriteFile(p(tpg+"enable"), []byte("1")))
	require.Error(t, f.LogIn("iqn.2026-11.io.x:t", 1, "iqn.2026-11.io.x:other"), "no ACL")
	require.NoError(t, f.LogIn("iqn.2026-11.io.x:t", 1, "iqn.2026-11.io.x:h"))
	b, err := f.ReadFile(p(tpg + "acls/iqn.2026-11.io.x:h/info"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "InitiatorName: iqn.2026-11.io.x:h"))
	require.NoError(t, f.WriteFile(p(tpg+"enable"), []byte("0")))
	b, err = f.ReadFile(p(tpg + "acls/iqn.2026-11.io.x:h/info"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "No active iSCSI Session"), "disabling the TPG drops sessions")
	assert.ErrorIs(t, f.WriteFile(p(tpg+"enable"), []byte("2")), unix.EINVAL)
}

func TestFailOnAndOps(t *testing.T) {
	f, p := build(t)
	f.ResetOps()
	f.FailOn("mkdir", "iscsi/*/tpgt_2", unix.ENOMEM)
	err := f.Mkdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_2"))
	require.ErrorIs(t, err, unix.ENOMEM)
	assert.Empty(t, f.Ops())
	f.ClearFailures()
	require.NoError(t, f.Mkdir(p("iscsi/iqn.2026-11.io.x:t/tpgt_2")))
	assert.Equal(t, []string{"mkdir iscsi/iqn.2026-11.io.x:t/tpgt_2"}, f.Ops())
	var pe interface{ Unwrap() error }
	assert.True(t, errors.As(err, &pe))
}
