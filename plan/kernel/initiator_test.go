package kernel

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/plan"
)

const (
	arrayPortal = "192.0.2.10:3260"
	arrayIQN    = "iqn.2001-05.com.example:array1"
)

// recordedRunner answers every iscsiadm call with success, discovery with
// a target offering arrayIQN at arrayPortal, and records the calls.
type recordedRunner struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordedRunner) Run(_ context.Context, _ string, args []string, _ []byte) ([]byte, []byte, int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	joined := strings.Join(args, " ")
	r.calls = append(r.calls, joined)
	if strings.Contains(joined, "-m discovery ") || strings.Contains(joined, "--discover") {
		return []byte(arrayPortal + ",1 " + arrayIQN + "\n"), nil, 0, nil
	}
	return nil, nil, 0, nil
}

// writeSecret writes a secret file the way the admin must: mode 0600.
func writeSecret(t *testing.T, dir, name, secret string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(secret+"\n"), 0o600))
	return p
}

// loginRecorded logs in to arrayIQN through a recorded iscsiadm and
// returns the iscsiadm calls and the record settings written.
func loginRecorded(t *testing.T, target plan.Target) (calls []string, records string) {
	t.Helper()
	r := &recordedRunner{}
	var recs bytes.Buffer
	dir := t.TempDir()
	c, err := initiator.New(initiator.Options{Runner: r, SysRoot: filepath.Join(dir, "sys"), DevRoot: dir,
		Records: &initiator.PrintRecords{W: &recs}})
	require.NoError(t, err)
	k := &initiatorPort{c: c, owner: os.Getuid()}
	require.NoError(t, k.Login(context.Background(), target))
	return r.calls, recs.String()
}

// TestLoginSessionCHAPNotOfferedOnDiscovery: an array that wants CHAP on
// its sessions but none on SendTargets discovery (LIO's default) refuses a
// discovery that offers it, so session credentials must stay off the
// discovery.
func TestLoginSessionCHAPNotOfferedOnDiscovery(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		chap *plan.CHAP
	}{
		{"one-way", &plan.CHAP{Username: "sess-user", SecretFile: writeSecret(t, dir, "s1", "session-secret-1")}},
		{"mutual", &plan.CHAP{Username: "sess-user", SecretFile: writeSecret(t, dir, "s2", "session-secret-1"),
			MutualUsername: "array-user", MutualSecretFile: writeSecret(t, dir, "m2", "array-secret-22")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, recs := loginRecorded(t, plan.Target{Portal: arrayPortal, IQN: arrayIQN, CHAP: tc.chap})
			require.Contains(t, calls, "-m discovery -t sendtargets -p "+arrayPortal+" -o nonpersistent")
			for _, c := range calls {
				require.NotContains(t, c, "discoverydb", "discovery offered credentials")
			}
			require.NotContains(t, recs, "discovery.sendtargets.auth")
			require.Contains(t, recs, "node.session.auth.username = sess-user")
		})
	}
}

// TestLoginDiscoveryCHAPApart: discovery credentials go to the SendTargets
// discovery only, session credentials to the session only.
func TestLoginDiscoveryCHAPApart(t *testing.T) {
	dir := t.TempDir()
	disc := &plan.CHAP{Username: "disc-user", SecretFile: writeSecret(t, dir, "d", "discovery-secret-3")}
	sess := &plan.CHAP{Username: "sess-user", SecretFile: writeSecret(t, dir, "s", "session-secret-1")}
	for _, tc := range []struct {
		name     string
		sessCHAP *plan.CHAP
		method   string
	}{{"discovery and session", sess, "CHAP"}, {"discovery only", nil, "None"}} {
		t.Run(tc.name, func(t *testing.T) {
			calls, recs := loginRecorded(t, plan.Target{Portal: arrayPortal, IQN: arrayIQN, CHAP: tc.sessCHAP, DiscoveryCHAP: disc})
			require.Contains(t, calls, "-m discoverydb -t sendtargets -p "+arrayPortal+" --discover -o nonpersistent")
			require.Contains(t, recs, "discovery record sendtargets "+arrayPortal+": discovery.sendtargets.auth.username = disc-user")
			require.NotContains(t, recs, "discovery.sendtargets.auth.username = sess-user")
			require.Contains(t, calls[len(calls)-2], "-n node.session.auth.authmethod -v "+tc.method)
			if tc.sessCHAP != nil {
				require.Contains(t, recs, "node.session.auth.username = sess-user")
			}
			require.NotContains(t, recs, "node.session.auth.username = disc-user")
		})
	}
}

// TestLoginSecretFileRefused: a secret file other users can read, or that
// root does not own, is refused with the fix named.
func TestLoginSecretFileRefused(t *testing.T) {
	dir := t.TempDir()
	p := writeSecret(t, dir, "s", "session-secret-1")
	require.NoError(t, os.Chmod(p, 0o640))
	r := &recordedRunner{}
	c, err := initiator.New(initiator.Options{Runner: r, SysRoot: filepath.Join(dir, "sys"), DevRoot: dir,
		Records: &initiator.PrintRecords{W: &bytes.Buffer{}}})
	require.NoError(t, err)
	k := &initiatorPort{c: c, owner: os.Getuid()}
	err = k.Login(context.Background(), plan.Target{Portal: arrayPortal, IQN: arrayIQN, DiscoveryCHAP: &plan.CHAP{Username: "u", SecretFile: p}})
	require.ErrorContains(t, err, "chmod 600 "+p)
	require.NoError(t, os.Chmod(p, 0o600))
	k.owner = os.Getuid() + 1
	err = k.Login(context.Background(), plan.Target{Portal: arrayPortal, IQN: arrayIQN, CHAP: &plan.CHAP{Username: "u", SecretFile: p}})
	require.ErrorContains(t, err, "chown")
	require.Empty(t, r.calls, "nothing run with a refused secret")
}

// TestDryRunLoginCHAP: a dry run shows discovery and session credentials
// apart, by user name and file.
func TestDryRunLoginCHAP(t *testing.T) {
	var out bytes.Buffer
	ports := DryRunPorts(&out, Options{})
	disc := &plan.CHAP{Username: "disc-user", SecretFile: "/etc/lunferry/disc.secret"}
	sess := &plan.CHAP{Username: "sess-user", SecretFile: "/etc/lunferry/sess.secret"}
	require.NoError(t, ports.Initiator.Login(context.Background(), plan.Target{Portal: arrayPortal, IQN: arrayIQN, CHAP: sess}))
	s := out.String()
	require.Contains(t, s, "iscsiadm -m discovery -t sendtargets -p "+arrayPortal+" -o nonpersistent")
	require.NotContains(t, s, "discoverydb")
	require.Contains(t, s, "CHAP user sess-user, secret from /etc/lunferry/sess.secret")
	out.Reset()
	require.NoError(t, ports.Initiator.Login(context.Background(), plan.Target{Portal: arrayPortal, IQN: arrayIQN, CHAP: sess, DiscoveryCHAP: disc}))
	s = out.String()
	require.Contains(t, s, "discovery.sendtargets.auth.authmethod -v CHAP (CHAP user disc-user, secret from /etc/lunferry/disc.secret")
	require.Contains(t, s, "CHAP user sess-user")
}

// TestSessionLookupsWithAndWithoutSnapshot: the port and its snapshot
// (status's) answer HasSession and SessionState alike, from the recorded
// sysfs of a session in recovery and one logged in.
func TestSessionLookupsWithAndWithoutSnapshot(t *testing.T) {
	c, err := initiator.New(initiator.Options{Runner: &recordedRunner{}, SysRoot: recordedSysfs, DevRoot: t.TempDir(),
		Records: &initiator.PrintRecords{W: &bytes.Buffer{}}})
	require.NoError(t, err)
	k := &initiatorPort{c: c, owner: os.Getuid()}
	ctx := context.Background()
	targets := map[plan.Target]string{
		{Portal: "127.0.0.1:3260", IQN: "iqn.2026-11.io.lunferry.lab:old-array"}: "FAILED",
		{Portal: "127.0.0.2:3260", IQN: "iqn.2026-11.io.lunferry.lab:new-array"}: "LOGGED_IN",
		{Portal: "127.0.0.9:3260", IQN: "iqn.2026-11.io.lunferry.lab:new-array"}: "",
		{Portal: "127.0.0.1:3260", IQN: "iqn.2026-11.io.lunferry.lab:other"}:     "",
	}
	for _, p := range []plan.Initiator{k, k.Snapshot()} {
		for tg, state := range targets {
			ok, err := p.HasSession(ctx, tg)
			require.NoError(t, err)
			require.Equal(t, state != "", ok, tg.String())
			s, ok, err := p.SessionState(ctx, tg)
			require.NoError(t, err)
			require.Equal(t, state != "", ok, tg.String())
			require.Equal(t, state, s.State, tg.String())
		}
	}
}
