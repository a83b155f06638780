package kernel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// recordedSysfs is the initiator's recorded sysfs tree of a session in
// recovery (old-array at 127.0.0.1, FAILED, 120/5/10 s) and one logged in
// with other timeouts (new-array at 127.0.0.2, 30/5/5 s).
var recordedSysfs = filepath.Join("..", "..", "initiator", "testdata", "sysfs", "recovering")

// doctorVolume saves a volume whose state records sessions to both arrays
// of the recorded tree and an export to its host, with LIO's ACL
// attributes nopin under configfs.
func doctorVolume(t *testing.T, stateDir, configfs, nopin string, newTimeouts *plan.SessionTimeouts) {
	t.Helper()
	v := &plan.Volume{Step: plan.StepHydrating, Spec: plan.Spec{Name: "vol1",
		Old:     plan.LUN{Portal: "127.0.0.1:3260", IQN: "iqn.2026-11.io.lunferry.lab:old-array", LUN: 1},
		New:     plan.LUN{Portal: "127.0.0.2:3260", IQN: "iqn.2026-11.io.lunferry.lab:new-array", LUN: 3, SessionTimeouts: newTimeouts},
		HostIQN: "iqn.1994-05.com.redhat:db1",
		Export:  plan.Export{IQN: "iqn.2026-11.com.example.proxy:vol1", Portals: []string{"10.0.2.5:3260"}}},
		Objects: []plan.Object{{Kind: plan.ObjNewLogin, Name: "new"}, {Kind: plan.ObjOldLogin, Name: "old"}, {Kind: plan.ObjExport, Name: "export"}}}
	require.NoError(t, plan.Store{Dir: stateDir}.Save(v))
	if nopin == "" {
		return
	}
	acl := filepath.Join(configfs, "iscsi", v.Spec.Export.IQN, "tpgt_1", "acls", v.Spec.HostIQN, "attrib")
	require.NoError(t, os.MkdirAll(acl, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(acl, "nopin_timeout"), []byte(nopin+"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(acl, "nopin_response_timeout"), []byte("30\n"), 0o644))
}

// sessionChecks runs Doctor over the recorded tree and returns its
// session and export checks by name prefix.
func sessionChecks(t *testing.T, stateDir, configfs string) map[string]Check {
	t.Helper()
	out := map[string]Check{}
	for _, c := range Doctor(context.Background(), DoctorOptions{SysRoot: recordedSysfs, DevRoot: t.TempDir(), ConfigFSRoot: configfs,
		StateDir: stateDir, Runner: &recordedRunner{}, DMTargets: func(context.Context) ([]string, error) { return []string{"clone"}, nil }}) {
		for _, p := range []string{"session 4", "session 5", "export", "array sessions"} {
			if strings.HasPrefix(c.Name, p) {
				out[p] = c
			}
		}
	}
	return out
}

func TestDoctorChecksSessions(t *testing.T) {
	state, configfs := t.TempDir(), t.TempDir()
	doctorVolume(t, state, configfs, "15", nil)
	got := sessionChecks(t, state, configfs)

	old := got["session 4"]
	require.False(t, old.OK, "a session in recovery is a gap")
	require.Contains(t, old.Detail, "FAILED; replacement 2m0s, noop 5s/10s; used by vol1 (old): the array is unreachable, its I/O waits up to 2m0s")
	require.Contains(t, old.Fix, "iscsid logs in again by itself")

	nw := got["session 5"]
	require.False(t, nw.OK, "timeouts not the runbook's")
	require.Contains(t, nw.Detail, "differs from the runbook: vol1: replacement_timeout 30s live, 120s wanted; vol1: noop_out_timeout 5s live, 10s wanted")
	require.Contains(t, nw.Fix, filepath.Join(recordedSysfs, "class", "iscsi_session", "session5", "recovery_tmo"))

	exp := got["export"]
	require.True(t, exp.OK, exp.Detail)
	require.Contains(t, exp.Detail, "host iqn.1994-05.com.redhat:db1: NOP-In every 15s, session dropped after 30s without answer; in an array outage the proxy holds the host's I/O up to 2m0s")
}

func TestDoctorSessionsMatchRunbook(t *testing.T) {
	state, configfs := t.TempDir(), t.TempDir()
	doctorVolume(t, state, configfs, "0", &plan.SessionTimeouts{Replacement: plan.Duration(30 * time.Second), NoopTimeout: plan.Duration(5 * time.Second)})
	got := sessionChecks(t, state, configfs)
	require.True(t, got["session 5"].OK, got["session 5"].Detail)
	require.Contains(t, got["session 5"].Detail, "LOGGED_IN; replacement 30s, noop 5s/5s; used by vol1 (new)")
	require.False(t, got["export"].OK, "NOP-Ins switched off")
	require.Contains(t, got["export"].Fix, "nopin_timeout (LIO's default)")
}

func TestDoctorSessionUnknownAndExportGone(t *testing.T) {
	state, configfs := t.TempDir(), t.TempDir()
	v := &plan.Volume{Step: plan.StepCutOver, Spec: plan.Spec{Name: "vol2", HostIQN: "iqn.1994-05.com.redhat:db2",
		Export: plan.Export{IQN: "iqn.2026-11.com.example.proxy:vol2"}}, Objects: []plan.Object{{Kind: plan.ObjExport, Name: "e"}}}
	require.NoError(t, plan.Store{Dir: state}.Save(v))
	got := sessionChecks(t, state, configfs)
	require.False(t, got["session 4"].OK)
	require.Contains(t, got["session 4"].Detail, "no volume's state records it")
	require.Contains(t, got["session 4"].Fix, "iscsiadm -m node -T iqn.2026-11.io.lunferry.lab:old-array -p 127.0.0.1:3260 -I lunferry --logout")
	require.False(t, got["export"].OK)
	require.Contains(t, got["export"].Detail, "no ACL for iqn.1994-05.com.redhat:db2")

	require.NoError(t, os.WriteFile(filepath.Join(state, "volumes", "vol2.json"), []byte("{"), 0o600))
	got = sessionChecks(t, state, configfs)
	require.False(t, got["array sessions"].OK)
	require.Contains(t, got["array sessions"].Detail, "state file corrupt")
}
