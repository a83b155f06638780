package lio_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
)

func TestRecorderDryRunApplyAndTeardown(t *testing.T) {
	real, f := newRoot(t)
	ctx := context.Background()
	var ops []lio.Op
	dry := lio.NewRoot(lio.Options{ConfigFSRoot: f.Root, Addrs: real.Addrs, FS: &lio.Recorder{FS: f, DryRun: true, Log: lio.RecordOps(&ops)}})

	e := richExport()
	require.NoError(t, dry.Apply(ctx, e))
	assert.Empty(t, f.Objects(), "a dry run must not create anything")
	assert.Empty(t, f.Ops())
	text := lio.FormatOps(ops)
	assert.NotContains(t, text, "secret-of", "secrets in the dry-run log")
	assert.Contains(t, text, "write "+f.Root+"/iscsi/"+tIQN+"/tpgt_1/acls/"+hostA+"/auth/password = <secret>")
	assert.Contains(t, text, "symlink "+f.Root+"/iscsi/"+tIQN+"/tpgt_1/lun/lun_0/lunferry-vol1 -> "+f.Root+"/core/iblock_0/lunferry-vol1")
	assert.True(t, strings.HasSuffix(strings.TrimSpace(text), "tpgt_1/enable = 1"), "enable comes last:\n%s", text)

	// The dry run announces what the real run does, op for op, plus
	// writes of values that the kernel has as defaults already.
	var realOps []lio.Op
	rec := lio.NewRoot(lio.Options{ConfigFSRoot: f.Root, Addrs: real.Addrs, FS: &lio.Recorder{FS: f, Log: lio.RecordOps(&realOps)}})
	require.NoError(t, rec.Apply(ctx, e))
	i := 0
	for _, o := range ops {
		if i < len(realOps) && o == realOps[i] {
			i++
			continue
		}
		assert.Equal(t, "write", o.Kind, "dry run has an op the real run has not: %s", o)
	}
	assert.Equal(t, len(realOps), i, "the real run did more than the dry run announced")

	// Dry-run teardown of the real export: reported, not done.
	ops = nil
	dry = lio.NewRoot(lio.Options{ConfigFSRoot: f.Root, Addrs: real.Addrs, FS: &lio.Recorder{FS: f, DryRun: true, Log: lio.RecordOps(&ops)}})
	before := f.Objects()
	require.NoError(t, dry.Teardown(ctx, tIQN, lio.TeardownOptions{}))
	assert.Equal(t, before, f.Objects())
	realOps = nil
	require.NoError(t, rec.Teardown(ctx, tIQN, lio.TeardownOptions{}))
	assert.Equal(t, ops, realOps)
	assert.Equal(t, []string{"iscsi"}, f.Objects())
}

func TestRecorderDryRunWithoutConfigFS(t *testing.T) {
	// On a machine without LIO (a laptop reviewing a plan), a dry run
	// still lists what Apply would do.
	var ops []lio.Op
	r := lio.NewRoot(lio.Options{
		ConfigFSRoot: t.TempDir() + "/no/such/configfs",
		FS:           &lio.Recorder{DryRun: true, Log: lio.RecordOps(&ops)},
		Addrs:        lio.StaticAddrs{},
	})
	e := export()
	e.Portals[0].Addr = netip.MustParseAddr("0.0.0.0")
	require.NoError(t, r.Apply(context.Background(), e))
	text := lio.FormatOps(ops)
	assert.Contains(t, text, "/core/iblock_0/lunferry-vol1/control = udev_path=/dev/dm-3")
	assert.Contains(t, text, "/np/0.0.0.0:3260")
	assert.True(t, strings.HasSuffix(strings.TrimSpace(text), "tpgt_1/enable = 1"), text)
}
