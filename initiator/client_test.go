package initiator

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	t1 = "iqn.2003-01.org.linux-iscsi.lab:t1"
	t2 = "iqn.2003-01.org.linux-iscsi.lab:t2"
)

var (
	lab  = Portal{Addr: netip.MustParseAddr("127.0.0.1"), Port: 3260}
	node = Node{TargetIQN: t1, Portal: lab, TPGT: 1}
)

const nodeSel = "-m node -T " + t1 + " -p 127.0.0.1:3260,1 -I lunferry"

func testCHAP() *CHAP {
	return &CHAP{Username: "lunferry-user", Password: NewSecret("s3cret-initiator-1")}
}

func mutualCHAP() *CHAP {
	c := testCHAP()
	c.MutualUsername, c.MutualPassword = "target-user", NewSecret("s3cret-target-22")
	return c
}

var updateArgs = nodeSel + " -o update -n node.session.timeo.replacement_timeout -v 120 -n node.conn[0].timeo.noop_out_interval -v 5 -n node.conn[0].timeo.noop_out_timeout -v 10 -n node.conn[0].timeo.login_timeout -v 15 -n node.session.initial_login_retry_max -v 4 -n node.session.auth.authmethod -v "

func TestLoginWritesCHAPOutsideArgv(t *testing.T) {
	chap := mutualCHAP()
	f := newFake(t, []string{"s3cret-initiator-1", "s3cret-target-22"})
	c, rec := testClient(t, f, "")
	f.steps = []step{
		{args: "-m iface -I lunferry -o new", reply: "iface-new-vm"},
		{args: nodeSel + " -o new", reply: "node-new-vm", effect: makeNodeRecord(t, rec, node, "lunferry")},
		{args: updateArgs + "CHAP", reply: "node-update-vm"},
		{args: nodeSel + " --login", reply: "login-mutual"},
	}
	require.NoError(t, c.Login(context.Background(), node, LoginOptions{CHAP: chap}))

	p, err := rec.NodeRecordPath(node, "lunferry")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(rec.NodeDBDir, t1, "127.0.0.1,3260,1", "lunferry"), p)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	got := string(b)
	for _, line := range []string{
		"node.session.auth.username = lunferry-user\n",
		"node.session.auth.password = s3cret-initiator-1\n",
		"node.session.auth.username_in = target-user\n",
		"node.session.auth.password_in = s3cret-target-22\n",
	} {
		assert.Contains(t, got, line)
	}
	assert.True(t, strings.HasSuffix(got, "# END RECORD\n"), "record must still end with END RECORD")
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "a record holding a secret must be private")
}

func TestLoginWithoutCHAPClearsOldCredentials(t *testing.T) {
	f := newFake(t, nil)
	c, rec := testClient(t, f, "")
	seed := func() {
		makeNodeRecord(t, rec, node, "lunferry")()
		p, _ := rec.NodeRecordPath(node, "lunferry")
		b, _ := os.ReadFile(p)
		b = bytes.Replace(b, []byte("# END RECORD"), []byte("node.session.auth.username = old\nnode.session.auth.password = oldsecret\n# END RECORD"), 1)
		require.NoError(t, os.WriteFile(p, b, 0o600))
	}
	f.steps = []step{
		{args: "-m iface -I lunferry -o new", reply: "iface-new-vm"},
		{args: nodeSel + " -o new", reply: "node-new-vm", effect: seed},
		{args: updateArgs + "None", reply: "node-update-vm"},
		{args: nodeSel + " --login", reply: "login"},
	}
	require.NoError(t, c.Login(context.Background(), node, LoginOptions{}))
	p, _ := rec.NodeRecordPath(node, "lunferry")
	b, _ := os.ReadFile(p)
	assert.NotContains(t, string(b), "oldsecret")
	assert.NotContains(t, string(b), "node.session.auth.username")
}

func TestLoginCustomTimeouts(t *testing.T) {
	f := newFake(t, nil)
	c, rec := testClient(t, f, "")
	f.steps = []step{
		{args: "-m iface -I lunferry -o new", reply: "iface-new-vm"},
		{args: nodeSel + " -o new", reply: "node-new-vm", effect: makeNodeRecord(t, rec, node, "lunferry")},
		{args: nodeSel + " -o update -n node.session.timeo.replacement_timeout -v 37 -n node.conn[0].timeo.noop_out_interval -v 6 -n node.conn[0].timeo.noop_out_timeout -v 11 -n node.conn[0].timeo.login_timeout -v 15 -n node.session.initial_login_retry_max -v 4 -n node.session.auth.authmethod -v None", reply: "node-update-vm"},
		{args: nodeSel + " --login", reply: "login"},
	}
	require.NoError(t, c.Login(context.Background(), node, LoginOptions{Timeouts: Timeouts{ReplacementTimeout: 37e9, NoopOutInterval: 6e9, NoopOutTimeout: 11e9}}))
}

func TestLoginIdempotent(t *testing.T) {
	t.Run("session in sysfs", func(t *testing.T) {
		f := newFake(t, nil) // no iscsiadm call at all
		c, _ := testClient(t, f, "three-sessions")
		require.NoError(t, c.Login(context.Background(), node, LoginOptions{CHAP: testCHAP()}))
	})
	t.Run("iscsiadm says session exists", func(t *testing.T) {
		f := newFake(t, nil)
		c, rec := testClient(t, f, "")
		f.steps = []step{
			{args: "-m iface -I lunferry -o new", reply: "iface-new-vm"},
			{args: nodeSel + " -o new", reply: "node-new-vm", effect: makeNodeRecord(t, rec, node, "lunferry")},
			{args: updateArgs + "None", reply: "node-update-vm"},
			{args: nodeSel + " --login", reply: "login-again"},
		}
		require.NoError(t, c.Login(context.Background(), node, LoginOptions{}))
	})
}

func TestLoginFailures(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		chap        *CHAP
		is          error
		msg         []string
	}{
		{"wrong secret", "login-chap-wrong", testCHAP(), ErrAuthFailed, []string{"authorization failure", "CHAP user name and secret", "initiatorname.iscsi"}},
		{"not in ACL", "login-acl-refused", nil, ErrAuthFailed, []string{"authorization failure", "ACL"}},
		{"mutual secret wrong", "login-mutual-wrong", mutualCHAP(), ErrAuthFailed, []string{"mutual", "non-retryable"}},
		{"unreachable", "login-unreachable", nil, ErrUnreachable, []string{"connection timed out", "portal address"}},
		{"unknown target", "login-unknown-target", nil, ErrUnreachable, []string{"target name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var secrets []string
			method := "None"
			if tc.chap != nil {
				secrets = []string{tc.chap.Password.Reveal()}
				method = "CHAP"
			}
			f := newFake(t, secrets)
			c, rec := testClient(t, f, "")
			f.steps = []step{
				{args: "-m iface -I lunferry -o new", reply: "iface-new-vm"},
				{args: nodeSel + " -o new", reply: "node-new-vm", effect: makeNodeRecord(t, rec, node, "lunferry")},
				{args: updateArgs + method, reply: "node-update-vm"},
				{args: nodeSel + " --login", reply: tc.reply},
				// The record, which may hold a secret, is removed.
				{args: nodeSel + " -o delete", reply: "node-delete-vm", effect: removeNodeRecord(t, rec, node, "lunferry")},
			}
			err := c.Login(context.Background(), node, LoginOptions{CHAP: tc.chap})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			for _, m := range tc.msg {
				assert.Contains(t, err.Error(), m)
			}
			if tc.chap != nil {
				assert.NotContains(t, err.Error(), tc.chap.Password.Reveal())
			}
			_, err = rec.NodeRecordPath(node, "lunferry")
			assert.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}

func TestLoginResolvesTPGT(t *testing.T) {
	f := newFake(t, nil)
	c, rec := testClient(t, f, "")
	f.steps = []step{
		{args: "-m discovery -t sendtargets -p 127.0.0.1:3260 -o nonpersistent", reply: "discovery"},
		{args: "-m iface -I lunferry -o new", reply: "iface-new-vm"},
		{args: nodeSel + " -o new", reply: "node-new-vm", effect: makeNodeRecord(t, rec, node, "lunferry")},
		{args: updateArgs + "None", reply: "node-update-vm"},
		{args: nodeSel + " --login", reply: "login"},
	}
	require.NoError(t, c.Login(context.Background(), Node{TargetIQN: t1, Portal: Portal{Addr: lab.Addr}}, LoginOptions{}))
}

func TestLoginTargetNotOffered(t *testing.T) {
	f := newFake(t, nil, step{args: "-m discovery -t sendtargets -p 127.0.0.1:3260 -o nonpersistent", reply: "discovery"})
	c, _ := testClient(t, f, "")
	err := c.Login(context.Background(), Node{TargetIQN: "iqn.2003-01.org.linux-iscsi.lab:nosuch", Portal: lab}, LoginOptions{})
	assert.ErrorIs(t, err, ErrTargetNotOffered)
	assert.Contains(t, err.Error(), "127.0.0.1:3260,1 "+t1)
}

func TestLoginValidates(t *testing.T) {
	f := newFake(t, nil)
	c, _ := testClient(t, f, "")
	ctx := context.Background()
	assert.Error(t, c.Login(ctx, Node{TargetIQN: "bogus", Portal: lab, TPGT: 1}, LoginOptions{}))
	assert.Error(t, c.Login(ctx, Node{TargetIQN: t1, TPGT: 1}, LoginOptions{}))
	assert.Error(t, c.Login(ctx, node, LoginOptions{Timeouts: Timeouts{ReplacementTimeout: 1500e6}}))
	assert.Error(t, c.Login(ctx, node, LoginOptions{CHAP: &CHAP{Username: "u"}}))
}

func TestLogout(t *testing.T) {
	f := newFake(t, nil,
		step{args: nodeSel + " --logout", reply: "logout"},
		step{args: nodeSel + " -o delete", reply: "node-delete-vm"},
		// Again: nothing left, still no error.
		step{args: nodeSel + " --logout", reply: "logout-again"},
		step{args: nodeSel + " -o delete", reply: "node-delete-again"},
	)
	c, _ := testClient(t, f, "")
	require.NoError(t, c.Logout(context.Background(), node))
	require.NoError(t, c.Logout(context.Background(), node))
}

func TestLoginDaemonDown(t *testing.T) {
	sel := "-m node -T " + t1 + " -p 192.0.2.10:3260,1 -I lunferry"
	n := Node{TargetIQN: t1, Portal: Portal{Addr: netip.MustParseAddr("192.0.2.10")}, TPGT: 1}
	f := newFake(t, nil)
	c, rec := testClient(t, f, "")
	f.steps = []step{
		{args: "-m iface -I lunferry -o new", reply: "iface-new"},
		{args: sel + " -o new", reply: "node-new", effect: makeNodeRecord(t, rec, n, "lunferry")},
		{args: strings.Replace(updateArgs, nodeSel, sel, 1) + "None", reply: "node-update"},
		{args: sel + " --login", reply: "login-no-iscsid"},
		{args: sel + " -o delete", reply: "node-delete"},
	}
	err := c.Login(context.Background(), n, LoginOptions{})
	assert.ErrorIs(t, err, ErrDaemon)
	assert.Contains(t, err.Error(), "start iscsid")
}

func TestDiscover(t *testing.T) {
	f := newFake(t, nil,
		step{args: "-m discovery -t sendtargets -p 127.0.0.1:3260 -o nonpersistent", reply: "discovery"},
		step{args: "-m discovery -t sendtargets -p 127.0.0.9:3260 -o nonpersistent", reply: "discovery-unreachable"},
		step{args: "-m discovery -t sendtargets -p 127.0.0.1:3260 -o nonpersistent", reply: "discovery-no-chap"},
	)
	c, _ := testClient(t, f, "")
	ctx := context.Background()
	nodes, err := c.Discover(ctx, lab, nil)
	require.NoError(t, err)
	assert.Equal(t, []Node{{TargetIQN: t1, Portal: lab, TPGT: 1}}, nodes)

	_, err = c.Discover(ctx, Portal{Addr: netip.MustParseAddr("127.0.0.9")}, nil)
	assert.ErrorIs(t, err, ErrUnreachable)
	assert.Contains(t, err.Error(), "Connection refused")

	// Discovery CHAP is not the session's: the message says which.
	_, err = c.Discover(ctx, lab, nil)
	assert.ErrorIs(t, err, ErrAuthFailed)
	assert.ErrorIs(t, err, ErrDiscoveryAuthFailed)
	assert.Contains(t, err.Error(), "wants CHAP on SendTargets discovery")
	assert.NotContains(t, err.Error(), "check the CHAP user name and secret files")
}

func TestDiscoverCHAP(t *testing.T) {
	chap := &CHAP{Username: "disc-user", Password: NewSecret("disc-secret-3xyz")}
	f := newFake(t, []string{"disc-secret-3xyz"})
	c, rec := testClient(t, f, "")
	stPath := rec.SendTargetsRecordPath(lab)
	var during []byte
	db := "-m discoverydb -t sendtargets -p 127.0.0.1:3260"
	f.steps = []step{
		{args: db + " -o new", reply: "discoverydb-new", effect: func() {
			require.NoError(t, os.MkdirAll(filepath.Dir(stPath), 0o770))
			b, err := os.ReadFile("testdata/st-record.txt")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(stPath, b, 0o644))
		}},
		{args: db + " -o update -n discovery.sendtargets.auth.authmethod -v CHAP", reply: "discoverydb-update"},
		{args: db + " --discover -o nonpersistent", reply: "discoverydb-discover", effect: func() {
			during, _ = os.ReadFile(stPath)
		}},
		{args: db + " -o delete", reply: "discoverydb-delete", effect: func() { os.RemoveAll(filepath.Dir(stPath)) }},
	}
	nodes, err := c.Discover(context.Background(), lab, chap)
	require.NoError(t, err)
	assert.Equal(t, []Node{{TargetIQN: t1, Portal: lab, TPGT: 1}, {TargetIQN: t2, Portal: lab, TPGT: 1}}, nodes)
	assert.Contains(t, string(during), "discovery.sendtargets.auth.password = disc-secret-3xyz\n")
	assert.Contains(t, string(during), "discovery.sendtargets.auth.username = disc-user\n")
	assert.Contains(t, string(during), recordMarker)
}

func TestDiscoverCHAPFailureStillDeletesRecord(t *testing.T) {
	chap := &CHAP{Username: "disc-user", Password: NewSecret("wrong-secret-4xy")}
	f := newFake(t, []string{"wrong-secret-4xy"})
	c, rec := testClient(t, f, "")
	stPath := rec.SendTargetsRecordPath(lab)
	db := "-m discoverydb -t sendtargets -p 127.0.0.1:3260"
	f.steps = []step{
		{args: db + " -o new", reply: "discoverydb-new", effect: func() {
			require.NoError(t, os.MkdirAll(filepath.Dir(stPath), 0o770))
			require.NoError(t, os.WriteFile(stPath, []byte("# BEGIN RECORD 2.1.8\n# END RECORD\n"), 0o644))
		}},
		{args: db + " -o update -n discovery.sendtargets.auth.authmethod -v CHAP", reply: "discoverydb-update"},
		{args: db + " --discover -o nonpersistent", reply: "discoverydb-discover-wrong"},
		{args: db + " -o delete", reply: "discoverydb-delete"},
	}
	_, err := c.Discover(context.Background(), lab, chap)
	assert.ErrorIs(t, err, ErrAuthFailed)
	assert.ErrorIs(t, err, ErrDiscoveryAuthFailed)
	assert.Contains(t, err.Error(), "refused the discovery CHAP credentials")
	assert.NotContains(t, err.Error(), "wrong-secret-4xy")
}

// TestDiscoverCHAPNotWanted: LIO with no discovery CHAP (its default)
// answers offered credentials with a fatal login error; the message says
// to offer none rather than blame the target name or the session's CHAP.
func TestDiscoverCHAPNotWanted(t *testing.T) {
	chap := &CHAP{Username: "disc-user", Password: NewSecret("disc-secret-3xyz")}
	f := newFake(t, []string{"disc-secret-3xyz"})
	c, rec := testClient(t, f, "")
	stPath := rec.SendTargetsRecordPath(lab)
	db := "-m discoverydb -t sendtargets -p 127.0.0.1:3260"
	f.steps = []step{
		{args: db + " -o new", reply: "discoverydb-new", effect: func() {
			require.NoError(t, os.MkdirAll(filepath.Dir(stPath), 0o770))
			require.NoError(t, os.WriteFile(stPath, []byte("# BEGIN RECORD 2.1.8\n# END RECORD\n"), 0o644))
		}},
		{args: db + " -o update -n discovery.sendtargets.auth.authmethod -v CHAP", reply: "discoverydb-update"},
		{args: db + " --discover -o nonpersistent", reply: "discoverydb-discover-not-wanted"},
		{args: db + " -o delete", reply: "discoverydb-delete"},
	}
	_, err := c.Discover(context.Background(), lab, chap)
	assert.ErrorIs(t, err, ErrDiscoveryAuthFailed)
	assert.Contains(t, err.Error(), "give none if the array wants no CHAP on discovery")
	assert.NotContains(t, err.Error(), "check the target IQN")
}

func TestDiscoverCHAPRefusesForeignRecord(t *testing.T) {
	f := newFake(t, nil) // no call
	c, rec := testClient(t, f, "")
	stPath := rec.SendTargetsRecordPath(lab)
	require.NoError(t, os.MkdirAll(filepath.Dir(stPath), 0o770))
	b, err := os.ReadFile("testdata/st-record.txt")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(stPath, b, 0o600))
	_, err = c.Discover(context.Background(), lab, testCHAP())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not create")
	assert.Contains(t, err.Error(), "-o delete")
	after, _ := os.ReadFile(stPath)
	assert.Equal(t, b, after, "the admin's record must be left alone")
}

func TestDryRun(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	c, err := NewDryRun(&out, "would: ", Options{SysRoot: filepath.Join(dir, "sys")})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Login(ctx, node, LoginOptions{CHAP: mutualCHAP()}))
	require.NoError(t, c.Logout(ctx, node))
	want := `would: iscsiadm -m iface -I lunferry -o new
would: iscsiadm -m node -T iqn.2003-01.org.linux-iscsi.lab:t1 -p 127.0.0.1:3260,1 -I lunferry -o new
would: iscsiadm -m node -T iqn.2003-01.org.linux-iscsi.lab:t1 -p 127.0.0.1:3260,1 -I lunferry -o update -n node.session.timeo.replacement_timeout -v 120 -n 'node.conn[0].timeo.noop_out_interval' -v 5 -n 'node.conn[0].timeo.noop_out_timeout' -v 10 -n 'node.conn[0].timeo.login_timeout' -v 15 -n node.session.initial_login_retry_max -v 4 -n node.session.auth.authmethod -v CHAP
would: node record 127.0.0.1:3260,1 iqn.2003-01.org.linux-iscsi.lab:t1 iface lunferry: node.session.auth.username = lunferry-user
would: node record 127.0.0.1:3260,1 iqn.2003-01.org.linux-iscsi.lab:t1 iface lunferry: node.session.auth.password = <redacted>
would: node record 127.0.0.1:3260,1 iqn.2003-01.org.linux-iscsi.lab:t1 iface lunferry: node.session.auth.username_in = target-user
would: node record 127.0.0.1:3260,1 iqn.2003-01.org.linux-iscsi.lab:t1 iface lunferry: node.session.auth.password_in = <redacted>
would: iscsiadm -m node -T iqn.2003-01.org.linux-iscsi.lab:t1 -p 127.0.0.1:3260,1 -I lunferry --login
would: iscsiadm -m node -T iqn.2003-01.org.linux-iscsi.lab:t1 -p 127.0.0.1:3260,1 -I lunferry --logout
would: iscsiadm -m node -T iqn.2003-01.org.linux-iscsi.lab:t1 -p 127.0.0.1:3260,1 -I lunferry -o delete
`
	assert.Equal(t, want, out.String())
	assert.NotContains(t, out.String(), "s3cret")
}

func TestIscsiadmErrorFromTranscript(t *testing.T) {
	f := newFake(t, nil, step{args: nodeSel + " -o update -n node.bogus -v 1", reply: "node-update-bad-key"})
	c, _ := testClient(t, f, "")
	_, err := c.iscsiadmRun(context.Background(), strings.Fields(nodeSel+" -o update -n node.bogus -v 1")...)
	var ie *IscsiadmError
	require.True(t, errors.As(err, &ie))
	assert.Equal(t, ExitInval, ie.Code)
	assert.Equal(t, "Cannot modify node.bogus. Invalid param name.; Could not execute operation on all records: invalid parameter", ie.Stderr)
	assert.Contains(t, err.Error(), "exit 7 (ISCSI_ERR_INVAL)")
}

func TestDryRunUnknownTPGT(t *testing.T) {
	var out bytes.Buffer
	c, err := NewDryRun(&out, "", Options{SysRoot: filepath.Join(t.TempDir(), "sys")})
	require.NoError(t, err)
	require.NoError(t, c.Login(context.Background(), Node{TargetIQN: t1, Portal: lab}, LoginOptions{}))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 9)
	assert.Equal(t, "iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260 -o nonpersistent", lines[0])
	assert.Equal(t, "iscsiadm -m node -T "+t1+" -p 127.0.0.1:3260 -I lunferry --login", lines[8])
}

func TestRescan(t *testing.T) {
	sel := "-m node -T " + t1 + " -p 192.0.2.10:3260,1 -I lunferry"
	n := Node{TargetIQN: t1, Portal: Portal{Addr: netip.MustParseAddr("192.0.2.10")}, TPGT: 1}
	f := newFake(t, nil,
		step{args: nodeSel + " --rescan", reply: "rescan"},
		step{args: sel + " --rescan", reply: "rescan-no-session"},
	)
	c, _ := testClient(t, f, "")
	require.NoError(t, c.Rescan(context.Background(), node))
	err := c.Rescan(context.Background(), n)
	assert.ErrorIs(t, err, ErrNoSession)
	assert.Contains(t, err.Error(), "log in first")
}
