package lio_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/lio/configfstest"
)

// aptplFile is what target_core_pr.c (core_scsi3_update_aptpl_buf) writes
// for two registrations on the export of export(), the first holding a
// Write Exclusive - Registrants Only reservation, with the kernel's
// terminating NUL.
const aptplFile = "PR_REG_START: 0\ninitiator_fabric=iSCSI\ninitiator_node=iqn.2026-11.io.example:host-a\ninitiator_sid=23d000000\n" +
	"sa_res_key=506097522914230528\nres_holder=1\nres_type=05\nres_scope=00\nres_all_tg_pt=0\nmapped_lun=0\n" +
	"target_fabric=iSCSI\ntarget_node=" + tIQN + "\ntpgt=1\nport_rtpi=1\ntarget_lun=0\nPR_REG_END: 0\n" +
	"PR_REG_START: 1\ninitiator_fabric=iSCSI\ninitiator_node=iqn.2026-11.io.example:host-b\n" +
	"sa_res_key=17\nres_holder=0\nres_all_tg_pt=0\nmapped_lun=0\n" +
	"target_fabric=iSCSI\ntarget_node=" + tIQN + "\ntpgt=1\nport_rtpi=1\ntarget_lun=0\nPR_REG_END: 1\n\x00"

// aptplRoot returns a Root over a fake configfs whose dbroot is a
// temporary directory holding content as the APTPL file of export()'s
// unit serial (no file when content is empty).
func aptplRoot(t *testing.T, content string) (*lio.Root, *configfstest.FS) {
	t.Helper()
	r, fsys := newRoot(t)
	dbroot := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(fsys.Root, "dbroot"), []byte(dbroot+"\n"), 0o644))
	require.NoError(t, r.EnsurePRDir())
	if content != "" {
		p := filepath.Join(dbroot, "pr", "aptpl_"+export().WWN.UnitSerial)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	}
	return r, fsys
}

// aptplWritten returns the registrations the fake kept for the storage
// object of export().
func aptplWritten(t *testing.T, fsys *configfstest.FS) []string {
	t.Helper()
	so, err := filepath.Glob(filepath.Join(fsys.Root, "core", "iblock_*", export().Name, "pr", "res_aptpl_metadata"))
	require.NoError(t, err)
	require.Len(t, so, 1)
	require.NoError(t, os.Chmod(so[0], 0o600))
	b, err := os.ReadFile(so[0])
	require.NoError(t, err)
	require.NoError(t, os.Chmod(so[0], 0o200))
	return strings.Fields(string(b))
}

// TestApplyRestoresAPTPL: a storage object created with the unit serial
// of an APTPL file gets each registration in it, before its LUN is
// exported (the kernel refuses them afterwards); a second Apply on the
// live object hands them over no more.
func TestApplyRestoresAPTPL(t *testing.T) {
	r, fsys := aptplRoot(t, aptplFile)
	require.NoError(t, r.Apply(context.Background(), export()))
	want := []string{
		"initiator_fabric=iSCSI,initiator_node=iqn.2026-11.io.example:host-a,initiator_sid=23d000000,sa_res_key=506097522914230528," +
			"res_holder=1,res_type=05,res_scope=00,res_all_tg_pt=0,mapped_lun=0,target_fabric=iSCSI,target_node=" + tIQN + ",tpgt=1,port_rtpi=1,target_lun=0",
		"initiator_fabric=iSCSI,initiator_node=iqn.2026-11.io.example:host-b,sa_res_key=17,res_holder=0,res_all_tg_pt=0,mapped_lun=0," +
			"target_fabric=iSCSI,target_node=" + tIQN + ",tpgt=1,port_rtpi=1,target_lun=0",
	}
	require.Equal(t, want, aptplWritten(t, fsys))
	ops := fsys.Ops()
	meta := slices.IndexFunc(ops, func(o string) bool { return strings.HasSuffix(o, "/pr/res_aptpl_metadata") })
	link := slices.IndexFunc(ops, func(o string) bool { return strings.HasPrefix(o, "symlink ") })
	require.True(t, meta >= 0 && link > meta, "registrations before the LUN's link: %v", ops)

	require.NoError(t, r.Apply(context.Background(), export()))
	require.Equal(t, want, aptplWritten(t, fsys), "the live object keeps its registrations")
}

// TestApplyWithoutAPTPL: no file, or a file saying there is nothing,
// writes no registration.
func TestApplyWithoutAPTPL(t *testing.T) {
	for _, content := range []string{"", "No Registrations or Reservations\n\x00"} {
		r, fsys := aptplRoot(t, content)
		require.NoError(t, r.Apply(context.Background(), export()))
		require.Empty(t, aptplWritten(t, fsys))
	}
}

// TestApplyRefusesBadAPTPL: a file lio cannot read is refused, naming
// it, and nothing is left behind.
func TestApplyRefusesBadAPTPL(t *testing.T) {
	for _, content := range []string{
		"PR_REG_START: 0\ninitiator_node=x\n",                         // cut short
		"PR_REG_START: 0\nsa_res_key=1,res_holder=1\nPR_REG_END: 0\n", // a comma would split the line
		"garbage\n",
	} {
		r, fsys := aptplRoot(t, content)
		err := r.Apply(context.Background(), export())
		require.ErrorIs(t, err, lio.ErrInvalidConfig, "%q", content)
		require.Contains(t, err.Error(), "aptpl_"+export().WWN.UnitSerial)
		require.Empty(t, fsys.Objects(), "%q", content)
	}
}
