package initiator

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEditRecord(t *testing.T) {
	orig, err := os.ReadFile("testdata/node-record.txt")
	require.NoError(t, err)
	set := []RecordSetting{
		PlainSetting(keyUsername, "alice"),
		SecretSetting(keyPassword, NewSecret("pa ss=word#1")),
		PlainSetting(keyAuthMethod, "CHAP"),
		PlainSetting(keyUsernameIn, ""),
	}
	got := string(editRecord(orig, set, false))

	// Existing key replaced in place, new keys before END RECORD, other
	// lines untouched.
	assert.Equal(t, strings.Count(string(orig), "\n")+2, strings.Count(got, "\n"))
	assert.Contains(t, got, "node.session.auth.authmethod = CHAP\nnode.session.auth.chap_algs = MD5\n")
	assert.True(t, strings.HasSuffix(got, "node.session.auth.username = alice\nnode.session.auth.password = pa ss=word#1\n# END RECORD\n"), got)
	assert.NotContains(t, got, "username_in")
	assert.True(t, strings.HasPrefix(got, "# BEGIN RECORD 2.1.8\nnode.name = "))

	// Idempotent.
	assert.Equal(t, got, string(editRecord([]byte(got), set, false)))

	// Empty value removes the key, duplicates too.
	dup := got + "node.session.auth.password=again\n"
	cleared := string(editRecord([]byte(dup), []RecordSetting{SecretSetting(keyPassword, Secret{})}, false))
	assert.NotContains(t, cleared, "node.session.auth.password")
	assert.Contains(t, cleared, "node.session.auth.username = alice\n")
}

func TestEditRecordParsesKeysLikeIdbm(t *testing.T) {
	in := "# BEGIN RECORD 2.1.8\n  node.session.auth.username=bob\nnode.session.auth.username_in = keep\n# END RECORD"
	got := string(editRecord([]byte(in), []RecordSetting{PlainSetting(keyUsername, "carol")}, false))
	assert.Equal(t, "# BEGIN RECORD 2.1.8\nnode.session.auth.username = carol\nnode.session.auth.username_in = keep\n# END RECORD", got)
}

func TestEditRecordMarker(t *testing.T) {
	st, err := os.ReadFile("testdata/st-record.txt")
	require.NoError(t, err)
	got := editRecord(st, []RecordSetting{PlainSetting(keyDiscUsername, "u")}, true)
	assert.True(t, strings.HasPrefix(string(got), "# BEGIN RECORD 2.1.8\n"+recordMarker+"\n"), string(got))
	again := editRecord(got, []RecordSetting{PlainSetting(keyDiscUsername, "u")}, true)
	assert.Equal(t, string(got), string(again))
	// The captured st_config has no newline after END RECORD: the new key
	// still lands before it.
	assert.Contains(t, string(got), "discovery.sendtargets.auth.username = u\n# END RECORD")
}

func TestNodeRecordPath(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nodes")
	r := &FileRecords{NodeDBDir: db}
	n := Node{TargetIQN: t1, Portal: Portal{Addr: netip.MustParseAddr("2001:db8::10"), Port: 3260}, TPGT: 1}
	_, err := r.NodeRecordPath(n, "lunferry")
	assert.ErrorIs(t, err, os.ErrNotExist)

	dir := filepath.Join(db, t1, "2001:db8::10,3260,1")
	require.NoError(t, os.MkdirAll(dir, 0o770))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lunferry"), nil, 0o600))
	p, err := r.NodeRecordPath(n, "lunferry")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "lunferry"), p)

	// TPGT unknown: the one portal group found is used.
	n.TPGT = 0
	p, err = r.NodeRecordPath(n, "lunferry")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "lunferry"), p)
	_, err = r.NodeRecordPath(n, "default")
	assert.ErrorIs(t, err, os.ErrNotExist)

	// An old-style record file "<addr>,<port>" wins, as in idbm_rec_read.
	old := filepath.Join(db, t1, "2001:db8::10,3260")
	require.NoError(t, os.WriteFile(old, nil, 0o600))
	p, err = r.NodeRecordPath(n, "lunferry")
	require.NoError(t, err)
	assert.Equal(t, old, p)
}

func TestUpdateNodeMissingRecord(t *testing.T) {
	r := &FileRecords{NodeDBDir: filepath.Join(t.TempDir(), "nodes"), LockDir: t.TempDir()}
	err := r.UpdateNode(context.Background(), node, "lunferry", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node database directory")
}

func TestRecordLock(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "nodes")
	lock := filepath.Join(dir, "lock")
	r := &FileRecords{NodeDBDir: db, LockDir: lock, LockTimeout: 200 * time.Millisecond}
	rec := filepath.Join(db, t1, "127.0.0.1,3260,1", "lunferry")
	require.NoError(t, os.MkdirAll(filepath.Dir(rec), 0o770))
	require.NoError(t, os.WriteFile(rec, []byte("# BEGIN RECORD 2.1.8\n# END RECORD\n"), 0o644))

	// Another iscsiadm holds the lock.
	require.NoError(t, os.MkdirAll(lock, 0o770))
	require.NoError(t, os.WriteFile(filepath.Join(lock, "lock.write"), nil, 0o666))
	err := r.UpdateNode(context.Background(), node, "lunferry", []RecordSetting{PlainSetting(keyUsername, "u")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "locked")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.LockTimeout = time.Minute
	assert.ErrorIs(t, r.UpdateNode(ctx, node, "lunferry", nil), context.Canceled)

	// Released: the update goes through and the lock is given back.
	require.NoError(t, os.Remove(filepath.Join(lock, "lock.write")))
	require.NoError(t, r.UpdateNode(context.Background(), node, "lunferry", []RecordSetting{PlainSetting(keyUsername, "u")}))
	_, err = os.Stat(filepath.Join(lock, "lock.write"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	b, _ := os.ReadFile(rec)
	assert.Equal(t, "# BEGIN RECORD 2.1.8\nnode.session.auth.username = u\n# END RECORD\n", string(b))
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(rec), ".*"))
	assert.Empty(t, left, "no temp files left")
}

func TestDetectNodeDBDir(t *testing.T) {
	dir := t.TempDir()
	deb, rh := filepath.Join(dir, "etc-iscsi"), filepath.Join(dir, "var-lib-iscsi")
	assert.Equal(t, filepath.Join(deb, "nodes"), detectNodeDBDir(deb, rh), "nothing: Debian layout")
	require.NoError(t, os.MkdirAll(deb, 0o755))
	assert.Equal(t, filepath.Join(deb, "nodes"), detectNodeDBDir(deb, rh))
	require.NoError(t, os.MkdirAll(rh, 0o755))
	assert.Equal(t, filepath.Join(rh, "nodes"), detectNodeDBDir(deb, rh), "RHEL ships /var/lib/iscsi")
	require.NoError(t, os.MkdirAll(filepath.Join(deb, "ifaces"), 0o755))
	assert.Equal(t, filepath.Join(deb, "nodes"), detectNodeDBDir(deb, rh), "an ifaces dir marks the database")
	require.NoError(t, os.MkdirAll(filepath.Join(rh, "nodes"), 0o755))
	assert.Equal(t, filepath.Join(rh, "nodes"), detectNodeDBDir(deb, rh), "a nodes dir wins")
}

func TestPrintRecordsRedacts(t *testing.T) {
	var b strings.Builder
	p := &PrintRecords{W: &b}
	require.NoError(t, p.UpdateSendTargets(context.Background(), lab, chapSettings(mutualCHAP(), true)))
	assert.Equal(t, `discovery record sendtargets 127.0.0.1:3260: discovery.sendtargets.auth.username = lunferry-user
discovery record sendtargets 127.0.0.1:3260: discovery.sendtargets.auth.password = <redacted>
discovery record sendtargets 127.0.0.1:3260: discovery.sendtargets.auth.username_in = target-user
discovery record sendtargets 127.0.0.1:3260: discovery.sendtargets.auth.password_in = <redacted>
`, b.String())
}
