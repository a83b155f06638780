package lio_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/lio/configfstest"
)

const (
	tIQN  = "iqn.2026-11.io.lunferry.test:t1"
	hostA = "iqn.2026-11.io.example:host-a"
	hostB = "iqn.2026-11.io.example:host-b"
)

// newRoot returns a Root over a fake configfs that knows 127.0.0.0/8,
// 192.0.2.10/24 and 2001:db8::10/64 as local.
func newRoot(t *testing.T) (*lio.Root, *configfstest.FS) {
	t.Helper()
	f := configfstest.New(t)
	return lio.NewRoot(lio.Options{
		ConfigFSRoot: f.Root,
		FS:           f,
		Addrs: lio.StaticAddrs{
			netip.MustParsePrefix("127.0.0.1/8"),
			netip.MustParsePrefix("192.0.2.10/24"),
			netip.MustParsePrefix("2001:db8::10/64"),
			netip.MustParsePrefix("::1/128"),
		},
	}), f
}

func export() lio.Export {
	return lio.Export{
		Name:      "lunferry-vol1",
		Device:    "/dev/dm-3",
		WWN:       lio.WWN{UnitSerial: "5f0e5b8c-7a3d-4e21-9c55-0123456789ab"},
		TargetIQN: tIQN,
		Portals:   []lio.Portal{{Addr: netip.MustParseAddr("127.0.0.1")}},
		LUN:       0,
		ACLs:      []lio.ACL{{InitiatorIQN: hostA}},
	}
}

func read(t *testing.T, f *configfstest.FS, rel string) string {
	t.Helper()
	b, err := f.ReadFile(path.Join(f.Root, rel))
	require.NoError(t, err, rel)
	return strings.TrimSpace(string(b))
}

const tpg = "iscsi/" + tIQN + "/tpgt_1"

func TestApplyCreatesSecureExport(t *testing.T) {
	r, f := newRoot(t)
	require.NoError(t, r.Apply(context.Background(), export()))

	assert.Equal(t, []string{
		"core/iblock_0",
		"core/iblock_0/lunferry-vol1",
		"iscsi",
		"iscsi/" + tIQN,
		tpg,
		tpg + "/acls/" + hostA,
		tpg + "/acls/" + hostA + "/lun_0",
		tpg + "/acls/" + hostA + "/lun_0/lunferry-vol1",
		tpg + "/lun/lun_0",
		tpg + "/lun/lun_0/lunferry-vol1",
		tpg + "/np/127.0.0.1:3260",
	}, f.Objects())

	// Secure by default.
	assert.Equal(t, "0", read(t, f, tpg+"/attrib/generate_node_acls"))
	assert.Equal(t, "1", read(t, f, tpg+"/attrib/demo_mode_write_protect"))
	assert.Equal(t, "0", read(t, f, tpg+"/attrib/cache_dynamic_acls"))
	assert.Equal(t, "0", read(t, f, tpg+"/attrib/authentication"))
	assert.Equal(t, "1", read(t, f, tpg+"/enable"))
	assert.Equal(t, "lunferry-vol1", read(t, f, tpg+"/param/TargetAlias"))
	assert.Equal(t, "0", read(t, f, tpg+"/acls/"+hostA+"/lun_0/write_protect"))

	// Storage object: control before enable, udev_path, serial.
	so := "core/iblock_0/lunferry-vol1"
	assert.Equal(t, "1", read(t, f, so+"/enable"))
	assert.Equal(t, "/dev/dm-3", read(t, f, so+"/udev_path"))
	assert.Contains(t, read(t, f, so+"/info"), "UDEV PATH: /dev/dm-3  readonly: 0")
	assert.Equal(t, "T10 VPD Unit Serial Number: 5f0e5b8c-7a3d-4e21-9c55-0123456789ab", read(t, f, so+"/wwn/vpd_unit_serial"))

	// Links are relative, as configfs shows them, and resolve to the object.
	l, err := os.Readlink(filepath.Join(f.Root, tpg, "lun/lun_0/lunferry-vol1"))
	require.NoError(t, err)
	assert.False(t, filepath.IsAbs(l))
	assert.Equal(t, filepath.Join(f.Root, so), filepath.Clean(filepath.Join(f.Root, tpg, "lun/lun_0", l)))
}

func TestApplyIsIdempotent(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	e := export()
	e.ACLs[0].CHAP = &lio.CHAP{UserID: "host-a", Password: "secret-of-host-a", MutualUserID: "proxy", MutualPassword: "secret-of-proxy"}
	e.TPGAttributes = map[string]string{"login_timeout": "10"}
	e.Attributes = map[string]string{"emulate_tpu": "1"}
	e.Portals = append(e.Portals, lio.Portal{Addr: netip.MustParseAddr("::1")})
	e.ACLs = append(e.ACLs, lio.ACL{InitiatorIQN: hostB, ReadOnly: true, CHAP: &lio.CHAP{UserID: "host-b", Password: "secret-of-host-b"}})
	require.NoError(t, r.Apply(ctx, e))
	assert.Equal(t, "1", read(t, f, tpg+"/acls/"+hostB+"/lun_0/write_protect"))
	assert.Equal(t, "0", read(t, f, tpg+"/acls/"+hostA+"/lun_0/write_protect"))
	assert.Equal(t, "0", read(t, f, tpg+"/attrib/prod_mode_write_protect"), "put back after linking")
	before := f.Objects()
	f.ResetOps()
	require.NoError(t, r.Apply(ctx, e))
	assert.Empty(t, f.Ops(), "a second Apply of the same export must not change configfs")
	assert.Equal(t, before, f.Objects())
}

func TestApplyGeneratesSerialOnce(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	e := export()
	e.WWN = lio.WWN{}
	require.NoError(t, r.Apply(ctx, e))
	serial := read(t, f, "core/iblock_0/lunferry-vol1/wwn/vpd_unit_serial")
	assert.Regexp(t, regexp.MustCompile(`: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`), serial)
	require.NoError(t, r.Apply(ctx, e))
	assert.Equal(t, serial, read(t, f, "core/iblock_0/lunferry-vol1/wwn/vpd_unit_serial"))
}

func TestApplyCHAP(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	e := export()
	acl := tpg + "/acls/" + hostA
	e.ACLs[0].CHAP = &lio.CHAP{UserID: "host-a", Password: "secret-of-host-a"}
	require.NoError(t, r.Apply(ctx, e))
	assert.Equal(t, "1", read(t, f, tpg+"/attrib/authentication"))
	assert.Equal(t, "1", read(t, f, acl+"/attrib/authentication"))
	assert.Equal(t, "host-a", read(t, f, acl+"/auth/userid"))
	assert.Equal(t, "secret-of-host-a", read(t, f, acl+"/auth/password"))
	assert.Equal(t, "", read(t, f, acl+"/auth/userid_mutual"))

	// Mutual.
	e.ACLs[0].CHAP = &lio.CHAP{UserID: "host-a", Password: "secret-of-host-a", MutualUserID: "proxy", MutualPassword: "secret-of-proxy"}
	require.NoError(t, r.Apply(ctx, e))
	assert.Equal(t, "proxy", read(t, f, acl+"/auth/userid_mutual"))
	assert.Equal(t, "secret-of-proxy", read(t, f, acl+"/auth/password_mutual"))

	// Back to no CHAP: credentials cleared, authentication off.
	e.ACLs[0].CHAP = nil
	require.NoError(t, r.Apply(ctx, e))
	assert.Equal(t, "NULL", read(t, f, acl+"/auth/userid"))
	assert.Equal(t, "NULL", read(t, f, acl+"/auth/password_mutual"))
	assert.Equal(t, "0", read(t, f, tpg+"/attrib/authentication"))
}

func TestCHAPValidation(t *testing.T) {
	for name, c := range map[string]*lio.CHAP{
		"empty password":  {UserID: "u"},
		"space":           {UserID: "u", Password: "a b"},
		"NULL":            {UserID: "u", Password: "NULL"},
		"half mutual":     {UserID: "u", Password: "p", MutualUserID: "m"},
		"same secret":     {UserID: "u", Password: "p1234567890ab", MutualUserID: "m", MutualPassword: "p1234567890ab"},
		"newline in user": {UserID: "u\n", Password: "p"},
		"too long":        {UserID: "u", Password: strings.Repeat("x", 256)},
	} {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, c.Validate(), lio.ErrInvalidConfig)
		})
	}
	c := &lio.CHAP{UserID: "u", Password: "topsecret", MutualUserID: "m", MutualPassword: "othersecret"}
	assert.NoError(t, c.Validate())
	assert.NotContains(t, c.String(), "topsecret")
}

func TestExportValidation(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	cases := map[string]struct {
		mod  func(*lio.Export)
		want error
	}{
		"no prefix":     {func(e *lio.Export) { e.Name = "vol1" }, lio.ErrInvalidName},
		"bad target":    {func(e *lio.Export) { e.TargetIQN = "iqn.2026-13.io.x:y" }, lio.ErrInvalidName},
		"bad initiator": {func(e *lio.Export) { e.ACLs[0].InitiatorIQN = "host-a" }, lio.ErrInvalidName},
		"no acl":        {func(e *lio.Export) { e.ACLs = nil }, lio.ErrInvalidConfig},
		"no portal":     {func(e *lio.Export) { e.Portals = nil }, lio.ErrInvalidConfig},
		"dup acl":       {func(e *lio.Export) { e.ACLs = append(e.ACLs, e.ACLs[0]) }, lio.ErrInvalidConfig},
		"relative dev":  {func(e *lio.Export) { e.Device = "dm-3" }, lio.ErrInvalidConfig},
		"comma dev":     {func(e *lio.Export) { e.Device = "/dev/a,b" }, lio.ErrInvalidConfig},
		"demo mode":     {func(e *lio.Export) { e.TPGAttributes = map[string]string{"generate_node_acls": "1"} }, lio.ErrInvalidConfig},
		"mixed chap": {func(e *lio.Export) {
			e.ACLs = []lio.ACL{{InitiatorIQN: hostA, CHAP: &lio.CHAP{UserID: "a", Password: "b"}}, {InitiatorIQN: hostB}}
		}, lio.ErrInvalidConfig},
		"lun too high":   {func(e *lio.Export) { e.LUN = 300 }, lio.ErrInvalidConfig},
		"long vendor":    {func(e *lio.Export) { e.WWN.VendorID = "VERYLONGVENDOR" }, lio.ErrInvalidConfig},
		"foreign portal": {func(e *lio.Export) { e.Portals = []lio.Portal{{Addr: netip.MustParseAddr("198.51.100.7")}} }, lio.ErrAddressNotLocal},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := export()
			c.mod(&e)
			err := r.Apply(ctx, e)
			require.ErrorIs(t, err, c.want)
			assert.Empty(t, f.Objects(), "a refused export must not touch configfs")
		})
	}
}

func TestPortalAddresses(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	e := export()
	e.Portals = []lio.Portal{
		{Addr: netip.MustParseAddr("0.0.0.0"), Port: 3261},
		{Addr: netip.MustParseAddr("127.0.0.3")}, // inside lo's 127.0.0.0/8
		{Addr: netip.MustParseAddr("192.0.2.10")},
		{Addr: netip.MustParseAddr("2001:db8::10"), Port: 3262},
		{Addr: netip.MustParseAddr("::")},
	}
	require.NoError(t, r.Apply(ctx, e))
	for _, n := range []string{"0.0.0.0:3261", "127.0.0.3:3260", "192.0.2.10:3260", "[2001:db8::10]:3262", "[::]:3260"} {
		assert.Contains(t, f.Objects(), tpg+"/np/"+n)
	}
	// A host address that is merely in a local subnet is not local.
	e.Portals = []lio.Portal{{Addr: netip.MustParseAddr("192.0.2.11")}}
	err := r.Apply(ctx, e)
	require.ErrorIs(t, err, lio.ErrAddressNotLocal)
	assert.Contains(t, err.Error(), "ip addr add")
}

func TestApplyConverges(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	e := export()
	e.ACLs = append(e.ACLs, lio.ACL{InitiatorIQN: hostB, ReadOnly: true})
	e.Portals = append(e.Portals, lio.Portal{Addr: netip.MustParseAddr("127.0.0.2")})
	require.NoError(t, r.Apply(ctx, e))
	assert.Equal(t, "1", read(t, f, tpg+"/acls/"+hostB+"/lun_0/write_protect"))

	e = export()
	require.NoError(t, r.Apply(ctx, e))
	objs := f.Objects()
	assert.NotContains(t, objs, tpg+"/acls/"+hostB)
	assert.NotContains(t, objs, tpg+"/np/127.0.0.2:3260")
	assert.Contains(t, objs, tpg+"/acls/"+hostA+"/lun_0/lunferry-vol1")
}

func TestApplyRollsBackWhatItCreated(t *testing.T) {
	for _, c := range []struct{ op, pattern string }{
		{"mkdir", "core/iblock_0/lunferry-vol1"},
		{"write", "core/iblock_0/lunferry-vol1/enable"},
		{"mkdir", "iscsi/*/tpgt_1"},
		{"symlink", "iscsi/*/tpgt_1/lun/lun_0/*"},
		{"mkdir", "iscsi/*/tpgt_1/np/*"},
		{"mkdir", "iscsi/*/tpgt_1/acls/*"},
		{"symlink", "iscsi/*/tpgt_1/acls/*/lun_0/*"},
		{"write", "iscsi/*/tpgt_1/enable"},
	} {
		t.Run(c.op+" "+c.pattern, func(t *testing.T) {
			r, f := newRoot(t)
			f.FailOn(c.op, c.pattern, unix.ENOMEM)
			err := r.Apply(context.Background(), export())
			require.ErrorIs(t, err, unix.ENOMEM)
			assert.Equal(t, 1, strings.Count(err.Error(), "lio: "), "one prefix: %v", err)
			t.Log(err)
			objs := f.Objects()
			if len(objs) > 0 && objs[len(objs)-1] == "iscsi" {
				objs = objs[:len(objs)-1] // the shared fabric directory stays
			}
			assert.Empty(t, objs)
		})
	}
}

func TestFailedReapplyKeepsExistingObjects(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, export()))
	before := f.Objects()
	e := export()
	e.ACLs = append(e.ACLs, lio.ACL{InitiatorIQN: hostB})
	f.FailOn("symlink", "iscsi/*/tpgt_1/acls/"+hostB+"/lun_0/*", unix.EIO)
	require.ErrorIs(t, r.Apply(ctx, e), unix.EIO)
	assert.Equal(t, before, f.Objects(), "only the objects of the failed call are removed")
	assert.Equal(t, "1", read(t, f, tpg+"/enable"))
}

func TestTeardown(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	e := export()
	e.ACLs = append(e.ACLs, lio.ACL{InitiatorIQN: hostB})
	require.NoError(t, r.Apply(ctx, e))
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{}))
	assert.Equal(t, []string{"iscsi"}, f.Objects())
	// Again: nothing to do.
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{}))
}

func TestTeardownRefusesLoggedInTarget(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, export()))
	require.NoError(t, f.LogIn(tIQN, 1, hostA))

	ss, err := r.Sessions(tIQN)
	require.NoError(t, err)
	require.Len(t, ss, 1)
	assert.Equal(t, lio.Session{InitiatorIQN: hostA, TPG: 1, Alias: "fake", ID: 7, State: "LOGGED_IN", Addresses: []string{"127.0.0.1"}}, ss[0])

	err = r.Teardown(ctx, tIQN, lio.TeardownOptions{})
	var active *lio.SessionsActiveError
	require.ErrorAs(t, err, &active)
	assert.Equal(t, tIQN, active.TargetIQN)
	assert.Contains(t, err.Error(), hostA)
	assert.Contains(t, f.Objects(), tpg+"/lun/lun_0")

	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{Force: true}))
	assert.Equal(t, []string{"iscsi"}, f.Objects())
}

func TestTeardownKeepStorageObjects(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, export()))
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{KeepStorageObjects: true}))
	assert.Equal(t, []string{"core/iblock_0", "core/iblock_0/lunferry-vol1", "iscsi"}, f.Objects())
	require.NoError(t, r.DeleteStorageObject(ctx, lio.BackstoreBlock, "lunferry-vol1"))
	assert.Equal(t, []string{"iscsi"}, f.Objects())
}

// foreign creates objects the way an admin with targetcli would: a
// storage object without the prefix and a target with the default alias.
func foreign(t *testing.T, f *configfstest.FS, iqn string) {
	t.Helper()
	p := func(rel string) string { return path.Join(f.Root, rel) }
	for _, d := range []string{"core/iblock_7", "core/iblock_7/db", "iscsi", "iscsi/" + iqn, "iscsi/" + iqn + "/tpgt_1", "iscsi/" + iqn + "/tpgt_1/lun/lun_0"} {
		if _, err := os.Lstat(p(d)); err == nil {
			continue
		}
		require.NoError(t, f.Mkdir(p(d)))
	}
	require.NoError(t, f.WriteFile(p("core/iblock_7/db/control"), []byte("udev_path=/dev/sdz")))
	require.NoError(t, f.WriteFile(p("core/iblock_7/db/enable"), []byte("1")))
	require.NoError(t, f.Symlink(p("core/iblock_7/db"), p("iscsi/"+iqn+"/tpgt_1/lun/lun_0/x")))
}

func TestNeverTouchesForeignObjects(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	foreign(t, f, tIQN)
	before := f.Objects()
	f.ResetOps()

	err := r.Apply(ctx, export())
	require.ErrorIs(t, err, lio.ErrNotOwned)
	assert.Contains(t, err.Error(), "choose another target IQN")
	err = r.Teardown(ctx, tIQN, lio.TeardownOptions{Force: true})
	require.ErrorIs(t, err, lio.ErrNotOwned)
	require.ErrorIs(t, r.DeleteStorageObject(ctx, lio.BackstoreBlock, "db"), lio.ErrNotOwned)

	assert.Equal(t, before, f.Objects())
	for _, op := range f.Ops() {
		assert.NotContains(t, op, "iblock_7", "foreign storage object touched")
		assert.NotContains(t, op, tIQN, "foreign target touched")
	}

	// Next to a foreign target, lunferry's own export works and its
	// teardown leaves the foreign objects alone.
	e := export()
	e.TargetIQN = "iqn.2026-11.io.lunferry.test:t2"
	require.NoError(t, r.Apply(ctx, e))
	require.NoError(t, r.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{}))
	assert.Equal(t, before, f.Objects())

	// Dump leaves foreign objects out.
	d, err := r.Dump(ctx)
	require.NoError(t, err)
	assert.Empty(t, d.StorageObjects)
	assert.Empty(t, d.Targets)
}

func TestForeignLUNMakesTargetForeign(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, export()))
	// Someone maps their own storage object into lunferry's target.
	require.NoError(t, f.Mkdir(path.Join(f.Root, "core/iblock_7")))
	require.NoError(t, f.Mkdir(path.Join(f.Root, "core/iblock_7/db")))
	require.NoError(t, f.WriteFile(path.Join(f.Root, "core/iblock_7/db/control"), []byte("udev_path=/dev/sdz")))
	require.NoError(t, f.WriteFile(path.Join(f.Root, "core/iblock_7/db/enable"), []byte("1")))
	require.NoError(t, f.Mkdir(path.Join(f.Root, tpg, "lun/lun_5")))
	require.NoError(t, f.Symlink(path.Join(f.Root, "core/iblock_7/db"), path.Join(f.Root, tpg, "lun/lun_5/db")))
	err := r.Teardown(ctx, tIQN, lio.TeardownOptions{})
	require.ErrorIs(t, err, lio.ErrNotOwned)
	assert.Contains(t, err.Error(), "lun 5")
}

func TestStorageObjectConflict(t *testing.T) {
	r, _ := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, export()))
	e := export()
	e.Device = "/dev/dm-4"
	err := r.Apply(ctx, e)
	require.ErrorIs(t, err, lio.ErrConflict)
	assert.Contains(t, err.Error(), "/dev/dm-3")
}

func TestHalfCreatedStorageObjectIsRecreated(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	// What a crash between mkdir and enable leaves.
	require.NoError(t, f.Mkdir(path.Join(f.Root, "core/iblock_0")))
	require.NoError(t, f.Mkdir(path.Join(f.Root, "core/iblock_0/lunferry-vol1")))
	require.NoError(t, r.Apply(ctx, export()))
	assert.Equal(t, "1", read(t, f, "core/iblock_0/lunferry-vol1/enable"))
	assert.Equal(t, "/dev/dm-3", read(t, f, "core/iblock_0/lunferry-vol1/udev_path"))
}

func TestFileIOAndRamdisk(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	e := export()
	e.Backstore, e.Device, e.Size = lio.BackstoreFileIO, "/srv/lun.img", 64<<20
	require.NoError(t, r.Apply(ctx, e))
	assert.Contains(t, read(t, f, "core/fileio_0/lunferry-vol1/info"), "File: /srv/lun.img  Size: 67108864")
	st, err := r.Describe(ctx, e.TargetIQN)
	require.NoError(t, err)
	require.NotNil(t, st.StorageObjects[0].Size)
	assert.Equal(t, uint64(64<<20), *st.StorageObjects[0].Size, "Size, not SectorSize")

	e2 := export()
	e2.Name, e2.TargetIQN = "lunferry-rd", "iqn.2026-11.io.lunferry.test:rd"
	e2.Backstore, e2.Device, e2.Size = lio.BackstoreRamdisk, "", 1<<20
	require.NoError(t, r.Apply(ctx, e2))
	assert.Contains(t, read(t, f, "core/rd_mcp_1/lunferry-rd/info"), "PAGES/PAGE_SIZE: 256*4096")

	// fileio without size on a regular file: the kernel refuses enable.
	e3 := export()
	e3.Name, e3.TargetIQN = "lunferry-nosize", "iqn.2026-11.io.lunferry.test:ns"
	e3.Backstore, e3.Device = lio.BackstoreFileIO, "/srv/other.img"
	err = r.Apply(ctx, e3)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "enable storage object fileio/lunferry-nosize")
	assert.NotContains(t, f.Objects(), "core/fileio_2")
}

func TestWWNFields(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	e := export()
	e.WWN = lio.WWN{UnitSerial: "abc123", VendorID: "LUNFERRY", ProductID: "proxy", Revision: "1", CompanyID: 0x0a1b2c}
	require.NoError(t, r.Apply(ctx, e))
	so := "core/iblock_0/lunferry-vol1/wwn/"
	assert.Equal(t, "LUNFERRY", read(t, f, so+"vendor_id"))
	assert.Equal(t, "proxy", read(t, f, so+"product_id"))
	assert.Equal(t, "1", read(t, f, so+"revision"))
	assert.Equal(t, "0x0a1b2c", read(t, f, so+"company_id"))
	f.ResetOps()
	require.NoError(t, r.Apply(ctx, e))
	assert.Empty(t, f.Ops())
	// Changing the identity of an exported LUN is refused by the kernel,
	// and the error says what to do.
	e.WWN.UnitSerial = "other"
	err := r.Apply(ctx, e)
	require.ErrorIs(t, err, unix.EINVAL)
	require.ErrorIs(t, err, lio.ErrConflict)
	assert.Contains(t, err.Error(), "tear down the export first")
}

func TestDescribe(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	_, err := r.Describe(ctx, tIQN)
	require.ErrorIs(t, err, lio.ErrNotFound)
	require.NoError(t, r.Apply(ctx, export()))
	require.NoError(t, f.LogIn(tIQN, 1, hostA))
	st, err := r.Describe(ctx, tIQN)
	require.NoError(t, err)
	assert.True(t, st.Owned)
	require.Len(t, st.StorageObjects, 1)
	assert.Equal(t, "/dev/dm-3", st.StorageObjects[0].Dev)
	assert.Equal(t, "5f0e5b8c-7a3d-4e21-9c55-0123456789ab", st.StorageObjects[0].WWN)
	require.Len(t, st.Config.TPGs, 1)
	assert.True(t, st.Config.TPGs[0].Enable)
	assert.Equal(t, hostA, st.Config.TPGs[0].NodeACLs[0].NodeWWN)
	require.Len(t, st.Sessions, 1)
}

func TestValidateIQN(t *testing.T) {
	good := []string{
		"iqn.2026-11.io.lunferry:proxy",
		"iqn.2024-01.lab:x", // RFC-valid, refused by targetcli
		"iqn.1991-05.com.microsoft:host-1.example.com",
		"iqn.2001-04.com.example",
		"eui.02004567A425678D",
		"naa.52004567BA64678D",
		"naa.52004567BA64678D52004567BA64678D",
	}
	for _, n := range good {
		assert.NoError(t, lio.ValidateIQN(n), n)
	}
	bad := []string{
		"", "iqn", "iqn.2026-11", "iqn.2026-11.", "iqn.2026-13.io.x:y", "iqn.26-11.io.x",
		"iqn.2026-11.io.X:y", "iqn.2026-11.io.x:a b", "iqn.2026-11.io.x:a/b", "iqn.2026-11.-io:x",
		"eui.0200", "eui.02004567A425678Z", "naa.123", "IQN.2026-11.io.x", "host-a",
		"iqn.2026-11.io.x:" + strings.Repeat("a", 220),
	}
	for _, n := range bad {
		err := lio.ValidateIQN(n)
		assert.ErrorIs(t, err, lio.ErrInvalidName, n)
	}
	assert.Contains(t, lio.ValidateIQN("iqn.2026-11.io.X:y").Error(), "lower case")
}

func TestContextCancelled(t *testing.T) {
	r, f := newRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.Apply(ctx, export())
	require.True(t, errors.Is(err, context.Canceled), err)
	assert.Empty(t, f.Objects())
}

func TestInterruptedApplyIsAdopted(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	// What a crash right after the TPG mkdir leaves: an unmarked, empty,
	// disabled TPG.
	require.NoError(t, f.Mkdir(path.Join(f.Root, "iscsi")))
	require.NoError(t, f.Mkdir(path.Join(f.Root, "iscsi", tIQN)))
	require.NoError(t, f.Mkdir(path.Join(f.Root, tpg)))
	require.NoError(t, r.Apply(ctx, export()))
	assert.Equal(t, "lunferry-vol1", read(t, f, tpg+"/param/TargetAlias"))
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{}))
	assert.Equal(t, []string{"iscsi"}, f.Objects())
}

func TestTeardownFinishesInterruptedTeardown(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, export()))
	// Interrupted after the target, before the storage object.
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{KeepStorageObjects: true}))
	assert.Contains(t, f.Objects(), "core/iblock_0/lunferry-vol1")
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{StorageObjects: []string{"lunferry-vol1"}}))
	assert.Equal(t, []string{"iscsi"}, f.Objects())
	// Foreign names are refused.
	require.ErrorIs(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{StorageObjects: []string{"db"}}), lio.ErrNotOwned)
	// A storage object still exported by another lunferry target stays.
	e := export()
	e.TargetIQN = "iqn.2026-11.io.lunferry.test:other"
	require.NoError(t, r.Apply(ctx, e))
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{StorageObjects: []string{"lunferry-vol1"}}))
	assert.Contains(t, f.Objects(), "core/iblock_0/lunferry-vol1")
}

func TestEnsurePRDir(t *testing.T) {
	r, fsys := newRoot(t)
	dbroot := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(fsys.Root, "dbroot"), []byte(dbroot+"\n"), 0o644))
	require.NoError(t, r.EnsurePRDir())
	st, err := os.Stat(filepath.Join(dbroot, "pr"))
	require.NoError(t, err)
	require.True(t, st.IsDir())
	require.NoError(t, r.EnsurePRDir(), "idempotent")
	require.NoError(t, os.Remove(filepath.Join(fsys.Root, "dbroot")))
	require.NoError(t, r.EnsurePRDir(), "no dbroot attribute: nothing to make")
}

// A storage object a saved configuration restored by its path, when the
// path was another device: the path matches, the device iblock opened
// does not (the fake opens 254:0; /dev/null is 1:3).
func TestStorageObjectOnAnotherDeviceOfTheSamePath(t *testing.T) {
	r, _ := newRoot(t)
	ctx := context.Background()
	e := export()
	e.Device = "/dev/null"
	require.NoError(t, r.Apply(ctx, e))
	err := r.Apply(ctx, e)
	require.ErrorIs(t, err, lio.ErrConflict)
	assert.Contains(t, err.Error(), "holds device 254:0, but /dev/null is 1:3")
}
