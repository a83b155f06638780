package lio_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/lio"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(p, got, 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test ./lio -run %s -update to create it", t.Name())
	assert.Equal(t, string(want), string(got))
}

func richExport() lio.Export {
	e := export()
	e.ACLs = []lio.ACL{
		{InitiatorIQN: hostA, CHAP: &lio.CHAP{UserID: "host-a", Password: "secret-of-host-a", MutualUserID: "proxy", MutualPassword: "secret-of-proxy"}},
		{InitiatorIQN: hostB, ReadOnly: true, CHAP: &lio.CHAP{UserID: "host-b", Password: "secret-of-host-b"}},
	}
	e.Portals = append(e.Portals, lio.Portal{Addr: netip.MustParseAddr("2001:db8::10"), Port: 3261})
	return e
}

func TestDumpGolden(t *testing.T) {
	r, _ := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, richExport()))
	d, err := r.Dump(ctx)
	require.NoError(t, err)
	b, err := d.MarshalIndent()
	require.NoError(t, err)
	golden(t, "saveconfig.json", b)
}

func TestDumpRestoreRoundTrip(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, richExport()))
	d1, err := r.Dump(ctx)
	require.NoError(t, err)
	b1, err := d1.MarshalIndent()
	require.NoError(t, err)
	objects := f.Objects()

	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{}))
	assert.Equal(t, []string{"iscsi"}, f.Objects())

	parsed, err := lio.ParseSaveConfig(b1)
	require.NoError(t, err)
	require.NoError(t, r.Restore(ctx, parsed))
	assert.Equal(t, objects, f.Objects())
	d2, err := r.Dump(ctx)
	require.NoError(t, err)
	b2, err := d2.MarshalIndent()
	require.NoError(t, err)
	assert.Equal(t, string(b1), string(b2))

	// Restore is idempotent too.
	f.ResetOps()
	require.NoError(t, r.Restore(ctx, parsed))
	assert.Empty(t, f.Ops())
}

func TestRestoreRollsBack(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, richExport()))
	d, err := r.Dump(ctx)
	require.NoError(t, err)
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{}))
	f.FailOn("mkdir", "iscsi/*/tpgt_1/acls/"+hostB, unix.ENOSPC)
	require.ErrorIs(t, r.Restore(ctx, d), unix.ENOSPC)
	assert.Equal(t, []string{"iscsi"}, f.Objects())
}

func TestRestoreRefusesForeignObjects(t *testing.T) {
	r, f := newRoot(t)
	raw, err := os.ReadFile("testdata/targetcli-mixed.json")
	require.NoError(t, err)
	c, err := lio.ParseSaveConfig(raw)
	require.NoError(t, err)
	require.ErrorIs(t, r.Restore(context.Background(), c), lio.ErrNotOwned)
	assert.Empty(t, f.Objects())

	owned := c.Owned()
	require.Len(t, owned.StorageObjects, 1)
	assert.Equal(t, "lunferry-vol9", owned.StorageObjects[0].Name)
	require.Len(t, owned.Targets, 1)
	assert.Equal(t, "iqn.2026-11.io.lunferry.test:vol9", owned.Targets[0].WWN)
	require.NoError(t, r.Restore(context.Background(), owned))
	assert.Contains(t, f.Objects(), "iscsi/iqn.2026-11.io.lunferry.test:vol9/tpgt_1/acls/"+hostA+"/lun_0/5d1e7a9b0c")
	assert.Equal(t, "1", read(t, f, "iscsi/iqn.2026-11.io.lunferry.test:vol9/tpgt_1/enable"))
	assert.Equal(t, "0", read(t, f, "iscsi/iqn.2026-11.io.lunferry.test:vol9/tpgt_1/attrib/generate_node_acls"))
}

func TestRestoreRefusesDemoMode(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, export()))
	d, err := r.Dump(ctx)
	require.NoError(t, err)
	require.NoError(t, r.Teardown(ctx, tIQN, lio.TeardownOptions{}))
	d.Targets[0].TPGs[0].Attributes["generate_node_acls"] = "1"
	require.ErrorIs(t, r.Restore(ctx, d), lio.ErrInvalidConfig)
	assert.Equal(t, []string{"iscsi"}, f.Objects())
}

func TestAttributesJSON(t *testing.T) {
	a := lio.Attributes{"block_size": "512", "name": "x y", "neg": "-1"}
	b, err := json.Marshal(a)
	require.NoError(t, err)
	assert.Equal(t, `{"block_size":512,"name":"x y","neg":-1}`, string(b))
	var back lio.Attributes
	require.NoError(t, json.Unmarshal([]byte(`{"block_size":512,"name":"x y","neg":-1,"flag":true}`), &back))
	assert.Equal(t, lio.Attributes{"block_size": "512", "name": "x y", "neg": "-1", "flag": "1"}, back)
}

func TestCHAPNotInJSON(t *testing.T) {
	e := richExport()
	b, err := json.Marshal(e)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "secret-of")
}

func TestSessionInfoParsing(t *testing.T) {
	r, f := newRoot(t)
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, export()))
	// The text the 6.1 kernel wrote (lio_target_nacl_info_show) for the
	// lab initiator's session, captured in the lab VM by
	// TestKernelExportLoginWriteRead.
	info, err := os.ReadFile("testdata/acl-info-session.txt")
	require.NoError(t, err)
	p := path.Join(f.Root, tpg, "acls", hostA, "info")
	require.NoError(t, os.Chmod(p, 0o644))
	require.NoError(t, os.WriteFile(p, info, 0o644))
	ss, err := r.Sessions(tIQN)
	require.NoError(t, err)
	require.Len(t, ss, 1)
	assert.Equal(t, lio.Session{InitiatorIQN: "iqn.2026-11.io.lunferry.lab:proxy", TPG: 1, Alias: "lunferry-lab", ID: 1, State: "LOGGED_IN", Addresses: []string{"127.0.0.1"}}, ss[0])
	assert.True(t, strings.HasPrefix(string(info), "InitiatorName:"))
}
