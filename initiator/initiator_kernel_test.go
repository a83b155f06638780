package initiator

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/integration/vmtest"
)

func TestMain(m *testing.M) { os.Exit(vmtest.LeakCheck(m)) }

const configfsTarget = "/sys/kernel/config/target"

// labTarget is an LIO iSCSI target built with raw configfs writes (the lio
// package is not used here): a fileio LUN 0 on a file in a temp dir, one
// portal on a random 127.0.0.x, one ACL.
type labTarget struct {
	IQN     string
	Portal  Portal
	Backing string
	Size    int64
	tpg     string
}

type targetOpts struct {
	size   int64
	acl    string // initiator admitted (default: this guest's name)
	chap   *CHAP  // one-way or mutual CHAP in the ACL
	portal Portal // default: a random 127.0.0.x:3260
}

func initiatorName(t *testing.T) string {
	b, err := os.ReadFile("/etc/iscsi/initiatorname.iscsi")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "InitiatorName="); ok {
			return v
		}
	}
	t.Fatal("no InitiatorName in /etc/iscsi/initiatorname.iscsi")
	return ""
}

func randInt(t *testing.T, lo, hi int64) int64 {
	n, err := rand.Int(rand.Reader, big.NewInt(hi-lo))
	require.NoError(t, err)
	return lo + n.Int64()
}

// cfgWrite writes an attribute without a trailing newline: LIO keeps the
// newline as part of string attributes such as CHAP secrets.
func cfgWrite(t *testing.T, path, value string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(value), 0), "write %s", path)
}

func newLabTarget(t *testing.T, o targetOpts) *labTarget {
	t.Helper()
	if o.size == 0 {
		o.size = 16 << 20
	}
	if o.acl == "" {
		o.acl = initiatorName(t)
	}
	if !o.portal.Addr.IsValid() {
		o.portal = Portal{Addr: netip.AddrFrom4([4]byte{127, 0, 0, byte(randInt(t, 2, 250))}), Port: 3260}
	}
	name := vmtest.RandomName("ini")
	hba := filepath.Join(configfsTarget, "core", fmt.Sprintf("fileio_%d", randInt(t, 1000, 1<<30)))
	so := filepath.Join(hba, name)
	lt := &labTarget{
		IQN:     "iqn.2026-11.io.lunferry.lab:" + name,
		Portal:  o.portal,
		Backing: filepath.Join(t.TempDir(), name+".img"),
		Size:    o.size,
	}
	tgt := filepath.Join(configfsTarget, "iscsi", lt.IQN)
	lt.tpg = filepath.Join(tgt, "tpgt_1")
	lun := filepath.Join(lt.tpg, "lun", "lun_0")
	np := filepath.Join(lt.tpg, "np", lt.Portal.String())
	acl := filepath.Join(lt.tpg, "acls", o.acl)
	// Teardown in the order that leaves configfs empty (lab NOTES).
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(lt.tpg, "enable"), []byte("0"), 0)
		for _, p := range []string{filepath.Join(acl, "lun_0", "lun0")} {
			_ = os.Remove(p)
		}
		for _, p := range []string{filepath.Join(acl, "lun_0"), acl} {
			_ = os.Remove(p)
		}
		_ = os.Remove(filepath.Join(lun, name))
		for _, p := range []string{lun, np, lt.tpg, tgt, so, hba} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("teardown: %v", err)
			}
		}
	})
	f, err := os.Create(lt.Backing)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(o.size))
	require.NoError(t, f.Close())

	require.NoError(t, os.MkdirAll(so, 0o755))
	cfgWrite(t, filepath.Join(so, "control"), fmt.Sprintf("fd_dev_name=%s,fd_dev_size=%d", lt.Backing, o.size))
	cfgWrite(t, filepath.Join(so, "enable"), "1")
	require.NoError(t, os.MkdirAll(lun, 0o755))
	require.NoError(t, os.Symlink(so, filepath.Join(lun, name)))
	require.NoError(t, os.Mkdir(np, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(acl, "lun_0"), 0o755))
	require.NoError(t, os.Symlink(lun, filepath.Join(acl, "lun_0", "lun0")))
	cfgWrite(t, filepath.Join(lt.tpg, "attrib", "generate_node_acls"), "0")
	cfgWrite(t, filepath.Join(lt.tpg, "attrib", "demo_mode_write_protect"), "1")
	if o.chap != nil {
		cfgWrite(t, filepath.Join(acl, "auth", "userid"), o.chap.Username)
		cfgWrite(t, filepath.Join(acl, "auth", "password"), o.chap.Password.Reveal())
		if o.chap.Mutual() {
			cfgWrite(t, filepath.Join(acl, "auth", "userid_mutual"), o.chap.MutualUsername)
			cfgWrite(t, filepath.Join(acl, "auth", "password_mutual"), o.chap.MutualPassword.Reveal())
		}
		cfgWrite(t, filepath.Join(lt.tpg, "attrib", "authentication"), "1")
	} else {
		cfgWrite(t, filepath.Join(lt.tpg, "attrib", "authentication"), "0")
	}
	cfgWrite(t, filepath.Join(lt.tpg, "enable"), "1")
	return lt
}

func (lt *labTarget) node() Node { return Node{TargetIQN: lt.IQN, Portal: lt.Portal} }

// guardRunner runs commands for real and fails the test if a secret shows
// up in an argument or on stdin; it also counts calls.
type guardRunner struct {
	t       *testing.T
	secrets []string
	mu      sync.Mutex
	calls   []string
}

func (g *guardRunner) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, []byte, int, error) {
	joined := strings.Join(args, " ")
	for _, s := range g.secrets {
		if strings.Contains(joined, s) || bytes.Contains(stdin, []byte(s)) {
			g.t.Errorf("secret passed to %s: %s", name, joined)
		}
	}
	g.mu.Lock()
	g.calls = append(g.calls, joined)
	g.mu.Unlock()
	return ExecRunner{}.Run(ctx, name, args, stdin)
}

func kernelClient(t *testing.T, secrets ...string) (*Client, *guardRunner) {
	g := &guardRunner{t: t, secrets: secrets}
	c, err := New(Options{Runner: g})
	require.NoError(t, err)
	return c, g
}

// login logs in and registers a logout for cleanup.
func login(t *testing.T, c *Client, n Node, o LoginOptions) error {
	t.Helper()
	t.Cleanup(func() {
		if err := c.Logout(context.Background(), n); err != nil {
			t.Errorf("cleanup logout: %v", err)
		}
	})
	return c.Login(context.Background(), n, o)
}

func sessionsTo(t *testing.T, c *Client, iqn string) []Session {
	t.Helper()
	ss, err := c.Sessions(context.Background())
	require.NoError(t, err)
	var out []Session
	for _, s := range ss {
		if s.TargetIQN == iqn {
			out = append(out, s)
		}
	}
	return out
}

// alignedBuf returns a page-aligned buffer for O_DIRECT.
func alignedBuf(t *testing.T, n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

func TestKernelLoginFindDiskReadWrite(t *testing.T) {
	vmtest.Require(t)
	ctx := context.Background()
	lt := newLabTarget(t, targetOpts{size: 16 << 20})
	lt2 := newLabTarget(t, targetOpts{size: 8 << 20})
	c, g := kernelClient(t)

	nodes, err := c.Discover(ctx, lt.Portal, nil)
	require.NoError(t, err)
	assert.Contains(t, nodes, Node{TargetIQN: lt.IQN, Portal: lt.Portal, TPGT: 1})

	start := time.Now()
	tmo := Timeouts{ReplacementTimeout: 37 * time.Second, NoopOutInterval: 6 * time.Second, NoopOutTimeout: 11 * time.Second}
	require.NoError(t, login(t, c, lt.node(), LoginOptions{Timeouts: tmo}))
	t.Logf("discover+login took %s", time.Since(start).Round(time.Millisecond))

	ss := sessionsTo(t, c, lt.IQN)
	require.Len(t, ss, 1)
	s := ss[0]
	assert.Equal(t, "lunferry", s.Iface)
	assert.Equal(t, "LOGGED_IN", s.State)
	assert.True(t, s.Portal.Equal(lt.Portal), "session portal %s", s.Portal)
	assert.Equal(t, 1, s.TPGT)
	assert.Equal(t, 37*time.Second, s.RecoveryTimeout, "replacement timeout in force")
	assert.Equal(t, 6*time.Second, s.NoopOutInterval)
	assert.Equal(t, 11*time.Second, s.NoopOutTimeout)

	// Login again: nothing to do, same session, no iscsiadm call.
	calls := len(g.calls)
	require.NoError(t, c.Login(ctx, lt.node(), LoginOptions{Timeouts: tmo}))
	assert.Equal(t, calls, len(g.calls))
	require.Len(t, sessionsTo(t, c, lt.IQN), 1)
	assert.Equal(t, s.SID, sessionsTo(t, c, lt.IQN)[0].SID)

	// A second target while the first session is up (the iface is busy).
	require.NoError(t, login(t, c, lt2.node(), LoginOptions{}))

	start = time.Now()
	d, err := c.FindDisk(ctx, lt.node(), 0, 10*time.Second)
	require.NoError(t, err)
	// ID: empty here, the raw targets set no unit serial.
	t.Logf("disk %s (%s, id %q) found %s after login", d.Path, d.HCTL, d.ID, time.Since(start).Round(time.Millisecond))
	assert.Equal(t, lt.Size, d.Size)
	assert.Equal(t, 512, d.LogicalBlockSize)
	d2, err := c.FindDisk(ctx, lt2.node(), 0, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, lt2.Size, d2.Size)
	assert.NotEqual(t, d.Name, d2.Name)

	// Write through the session, read it in the target's backing file.
	pattern := alignedBuf(t, 1<<20)
	_, err = rand.Read(pattern)
	require.NoError(t, err)
	f, err := os.OpenFile(d.Path, os.O_RDWR|unix.O_DIRECT, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(pattern, 1<<20)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	backing, err := os.ReadFile(lt.Backing)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(pattern, backing[1<<20:2<<20]), "data written through the session is in the backing file")

	// Write into the backing file, read it through the session (O_DIRECT:
	// no page cache).
	other := make([]byte, 1<<20)
	_, err = rand.Read(other)
	require.NoError(t, err)
	bf, err := os.OpenFile(lt.Backing, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = bf.WriteAt(other, 4<<20)
	require.NoError(t, err)
	require.NoError(t, bf.Close())
	got := alignedBuf(t, 1<<20)
	_, err = f.ReadAt(got, 4<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.True(t, bytes.Equal(other, got), "data in the backing file reads back through the session")

	// Logout, then again: both succeed; the record is gone.
	require.NoError(t, c.Logout(ctx, lt.node()))
	assert.Empty(t, sessionsTo(t, c, lt.IQN))
	require.NoError(t, c.Logout(ctx, lt.node()))
	_, err = c.records.(*FileRecords).NodeRecordPath(Node{TargetIQN: lt.IQN, Portal: lt.Portal, TPGT: 1}, c.iface)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = c.FindDisk(ctx, lt.node(), 0, time.Second)
	assert.ErrorIs(t, err, ErrNoSession)
	// The other session is untouched.
	assert.Len(t, sessionsTo(t, c, lt2.IQN), 1)
}

func writeSecretFile(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(s+"\n"), 0o600))
	return p
}

func TestKernelCHAP(t *testing.T) {
	vmtest.Require(t)
	ctx := context.Background()
	good := "lunferry-init-" + vmtest.RandomName("s")[9:]
	bad := "not-the-secret-42"
	mutualGood := "lunferry-tgt-" + vmtest.RandomName("m")[9:]
	mutualBad := "not-the-target-secret-7"
	want := &CHAP{Username: "lunferry-proxy", Password: NewSecret(good)}
	lt := newLabTarget(t, targetOpts{chap: want})
	c, _ := kernelClient(t, good, bad, mutualGood, mutualBad)

	load := func(f CHAPFiles) *CHAP {
		chap, err := f.Load(nil)
		require.NoError(t, err)
		return chap
	}

	t.Run("no credentials", func(t *testing.T) {
		err := login(t, c, lt.node(), LoginOptions{})
		assert.ErrorIs(t, err, ErrAuthFailed)
	})
	t.Run("wrong secret", func(t *testing.T) {
		chap := load(CHAPFiles{Username: "lunferry-proxy", SecretFile: writeSecretFile(t, bad)})
		err := login(t, c, lt.node(), LoginOptions{CHAP: chap})
		require.ErrorIs(t, err, ErrAuthFailed)
		t.Logf("error: %v", err)
		assert.Contains(t, err.Error(), "authorization failure")
		assert.Contains(t, err.Error(), "CHAP user name and secret")
		assert.NotContains(t, err.Error(), bad)
		assert.Empty(t, sessionsTo(t, c, lt.IQN))
		_, err = c.records.(*FileRecords).NodeRecordPath(Node{TargetIQN: lt.IQN, Portal: lt.Portal, TPGT: 1}, c.iface)
		assert.ErrorIs(t, err, os.ErrNotExist, "a failed login leaves no record with a secret behind")
	})
	t.Run("right secret", func(t *testing.T) {
		chap := load(CHAPFiles{Username: "lunferry-proxy", SecretFile: writeSecretFile(t, good)})
		require.NoError(t, login(t, c, lt.node(), LoginOptions{CHAP: chap}))
		require.Len(t, sessionsTo(t, c, lt.IQN), 1)
		// The record holds the secret, readable by root only.
		p, err := c.records.(*FileRecords).NodeRecordPath(Node{TargetIQN: lt.IQN, Portal: lt.Portal, TPGT: 1}, c.iface)
		require.NoError(t, err)
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		require.NoError(t, c.Logout(ctx, lt.node()))
	})

	// Mutual: the target must prove its own secret.
	acl := filepath.Join(lt.tpg, "acls", initiatorName(t), "auth")
	cfgWrite(t, filepath.Join(acl, "userid_mutual"), "lunferry-array")
	cfgWrite(t, filepath.Join(acl, "password_mutual"), mutualGood)
	t.Run("mutual wrong target secret", func(t *testing.T) {
		chap := load(CHAPFiles{Username: "lunferry-proxy", SecretFile: writeSecretFile(t, good), MutualUsername: "lunferry-array", MutualSecretFile: writeSecretFile(t, mutualBad)})
		err := login(t, c, lt.node(), LoginOptions{CHAP: chap})
		require.ErrorIs(t, err, ErrAuthFailed)
		t.Logf("error: %v", err)
		assert.Contains(t, err.Error(), "mutual")
		assert.Empty(t, sessionsTo(t, c, lt.IQN))
	})
	t.Run("mutual", func(t *testing.T) {
		chap := load(CHAPFiles{Username: "lunferry-proxy", SecretFile: writeSecretFile(t, good), MutualUsername: "lunferry-array", MutualSecretFile: writeSecretFile(t, mutualGood)})
		require.NoError(t, login(t, c, lt.node(), LoginOptions{CHAP: chap}))
		require.Len(t, sessionsTo(t, c, lt.IQN), 1)
		d, err := c.FindDisk(ctx, lt.node(), 0, 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, lt.Size, d.Size)
	})
}

func TestKernelACLRefused(t *testing.T) {
	vmtest.Require(t)
	lt := newLabTarget(t, targetOpts{acl: "iqn.2026-11.io.lunferry.lab:someone-else"})
	c, _ := kernelClient(t)
	err := login(t, c, Node{TargetIQN: lt.IQN, Portal: lt.Portal, TPGT: 1}, LoginOptions{})
	require.ErrorIs(t, err, ErrAuthFailed)
	assert.Contains(t, err.Error(), "ACL")
	assert.Empty(t, sessionsTo(t, c, lt.IQN))
}

func TestKernelSetReadOnly(t *testing.T) {
	vmtest.Require(t)
	ctx := context.Background()
	lt := newLabTarget(t, targetOpts{size: 4 << 20})
	c, _ := kernelClient(t)
	require.NoError(t, login(t, c, lt.node(), LoginOptions{}))
	d, err := c.FindDisk(ctx, lt.node(), 0, 10*time.Second)
	require.NoError(t, err)
	ro, err := c.ReadOnly(d.Path)
	require.NoError(t, err)
	assert.False(t, ro)

	require.NoError(t, c.SetReadOnly(d.Path))
	ro, err = c.ReadOnly(d.Path)
	require.NoError(t, err)
	assert.True(t, ro)

	f, err := os.OpenFile(d.Path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt(make([]byte, 4096), 0)
		f.Close()
	}
	require.Error(t, err, "write to a read-only disk")
	assert.True(t, errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES), "got %v", err)
	// Reads still work.
	b, err := os.ReadFile(d.Path)
	require.NoError(t, err)
	assert.Len(t, b, int(lt.Size))

	assert.Error(t, c.SetReadOnly(lt.Backing), "not a block device")
}

func TestKernelDiscoverCHAP(t *testing.T) {
	vmtest.Require(t)
	ctx := context.Background()
	lt := newLabTarget(t, targetOpts{})
	secret := "lunferry-disc-" + vmtest.RandomName("d")[9:]
	da := filepath.Join(configfsTarget, "iscsi", "discovery_auth")
	cfgWrite(t, filepath.Join(da, "userid"), "lunferry-disc")
	cfgWrite(t, filepath.Join(da, "password"), secret)
	cfgWrite(t, filepath.Join(da, "enforce_discovery_auth"), "1")
	t.Cleanup(func() {
		cfgWrite(t, filepath.Join(da, "enforce_discovery_auth"), "0")
		cfgWrite(t, filepath.Join(da, "userid"), "NULL")
		cfgWrite(t, filepath.Join(da, "password"), "NULL")
	})
	c, _ := kernelClient(t, secret)

	_, err := c.Discover(ctx, lt.Portal, nil)
	assert.ErrorIs(t, err, ErrAuthFailed)

	_, err = c.Discover(ctx, lt.Portal, &CHAP{Username: "lunferry-disc", Password: NewSecret("wrong-discovery-1")})
	assert.ErrorIs(t, err, ErrAuthFailed)

	nodes, err := c.Discover(ctx, lt.Portal, &CHAP{Username: "lunferry-disc", Password: NewSecret(secret)})
	require.NoError(t, err)
	assert.Contains(t, nodes, Node{TargetIQN: lt.IQN, Portal: lt.Portal, TPGT: 1})
	exists, _, err := c.records.SendTargets(ctx, lt.Portal)
	require.NoError(t, err)
	assert.False(t, exists, "the discovery record with the secret is removed")

	// Login resolving the TPGT through discovery with CHAP.
	require.NoError(t, login(t, c, lt.node(), LoginOptions{DiscoveryCHAP: &CHAP{Username: "lunferry-disc", Password: NewSecret(secret)}}))
	assert.Len(t, sessionsTo(t, c, lt.IQN), 1)
}

func TestKernelIPv6(t *testing.T) {
	vmtest.Require(t)
	ctx := context.Background()
	lt := newLabTarget(t, targetOpts{size: 4 << 20, portal: Portal{Addr: netip.IPv6Loopback(), Port: uint16(randInt(t, 3300, 3900))}})
	c, _ := kernelClient(t)
	require.NoError(t, login(t, c, lt.node(), LoginOptions{}))
	ss := sessionsTo(t, c, lt.IQN)
	require.Len(t, ss, 1)
	assert.True(t, ss[0].Portal.Equal(lt.Portal), "session portal %s, want %s", ss[0].Portal, lt.Portal)
	d, err := c.FindDisk(ctx, lt.node(), 0, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, lt.Size, d.Size)
	require.NoError(t, c.Logout(ctx, lt.node()))
	assert.Empty(t, sessionsTo(t, c, lt.IQN))
}

func TestKernelUnreachable(t *testing.T) {
	vmtest.Require(t)
	c, _ := kernelClient(t)
	// Nobody listens on this portal.
	p := Portal{Addr: netip.AddrFrom4([4]byte{127, 0, 0, byte(randInt(t, 2, 250))}), Port: 3999}
	n := Node{TargetIQN: "iqn.2026-11.io.lunferry.lab:" + vmtest.RandomName("nobody"), Portal: p, TPGT: 1}
	start := time.Now()
	err := login(t, c, n, LoginOptions{Timeouts: Timeouts{LoginTimeout: 2 * time.Second, LoginRetries: 2}})
	require.ErrorIs(t, err, ErrUnreachable)
	took := time.Since(start)
	t.Logf("unreachable login (2 tries of 2 s) failed after %s: %v", took.Round(time.Millisecond), err)
	// With iscsid.conf's 8 retries it takes about 18 s here.
	assert.Less(t, took, 14*time.Second, "LoginRetries is in force")
}

// TestKernelDiscoveryCHAPNotWanted: LIO's default is CHAP on sessions (when
// the TPG says so) and none on SendTargets discovery; a discovery that
// offers credentials anyway is refused. Session credentials must therefore
// never be offered on discovery.
func TestKernelDiscoveryCHAPNotWanted(t *testing.T) {
	vmtest.Require(t)
	ctx := context.Background()
	secret := "lunferry-sess-" + vmtest.RandomName("s")[9:]
	lt := newLabTarget(t, targetOpts{chap: &CHAP{Username: "lunferry-proxy", Password: NewSecret(secret)}})
	c, _ := kernelClient(t, secret)
	chap := &CHAP{Username: "lunferry-proxy", Password: NewSecret(secret)}

	_, err := c.Discover(ctx, lt.Portal, chap)
	require.ErrorIs(t, err, ErrDiscoveryAuthFailed)
	t.Logf("discovery offering the session's credentials: %v", err)
	assert.Contains(t, err.Error(), "give none if the array wants no CHAP on discovery")

	// Session CHAP alone: discovery without credentials, login with them.
	require.NoError(t, login(t, c, lt.node(), LoginOptions{CHAP: chap}))
	assert.Len(t, sessionsTo(t, c, lt.IQN), 1)
}
