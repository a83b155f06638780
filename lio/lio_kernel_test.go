package lio_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/lio"
)

// The lab guest's initiator name (integration/vm writes it to
// /etc/iscsi/initiatorname.iscsi).
const labInitiator = "iqn.2026-11.io.lunferry.lab:proxy"

// kernelIQNBase starts every target IQN the kernel tests create.
const kernelIQNBase = "iqn.2026-11.io.lunferry.test:"

func suffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// kernelRoot returns a Root on the real configfs. Every target created by
// the test is torn down (forced) at cleanup.
func kernelRoot(t *testing.T) *lio.Root {
	t.Helper()
	vmtest.Require(t)
	_, err := os.Stat(filepath.Join(lio.DefaultConfigFSRoot, "core"))
	require.NoError(t, err, "configfs with target_core_mod must be there in the lab VM")
	return lio.NewRoot(lio.Options{})
}

// loopDev makes a loop device over a size-byte file filled with a pattern
// and returns the device and the backing file.
func loopDev(t *testing.T, size int) (string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "backing.img")
	data := make([]byte, size)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(file, data, 0o600))
	out, err := exec.Command("losetup", "-f", "--show", file).CombinedOutput()
	require.NoError(t, err, "losetup: %s", out)
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev, file
}

// kernelExport is an export of dev to the lab initiator on a random
// 127.0.0.N portal, torn down at cleanup.
func kernelExport(t *testing.T, r *lio.Root, dev string) lio.Export {
	t.Helper()
	s := suffix()
	e := lio.Export{
		Name:      lio.NamePrefix + "kt-" + s,
		Device:    dev,
		TargetIQN: kernelIQNBase + s,
		Portals:   []lio.Portal{{Addr: netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + mrand.IntN(240))})}},
		ACLs:      []lio.ACL{{InitiatorIQN: labInitiator}},
	}
	t.Cleanup(func() {
		if err := r.Teardown(context.Background(), e.TargetIQN, lio.TeardownOptions{Force: true}); err != nil {
			t.Errorf("cleanup teardown: %v", err)
		}
		_ = r.DeleteStorageObject(context.Background(), lio.BackstoreBlock, e.Name)
	})
	return e
}

func portal(e lio.Export) string { return e.Portals[0].AddrPort().String() }

func iscsiadm(args ...string) (string, int, error) {
	cmd := exec.Command("iscsiadm", args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), err
	}
	return string(out), 0, err
}

// nodeRecord creates the open-iscsi node record for e (no discovery, so
// that ACL refusal is tested on login alone) with optional CHAP settings,
// and removes it (logging out first) at cleanup.
func nodeRecord(t *testing.T, e lio.Export, settings map[string]string) {
	t.Helper()
	out, _, err := iscsiadm("-m", "node", "-o", "new", "-T", e.TargetIQN, "-p", portal(e))
	require.NoError(t, err, "iscsiadm new node: %s", out)
	for k, v := range settings {
		out, _, err := iscsiadm("-m", "node", "-T", e.TargetIQN, "-p", portal(e), "-o", "update", "-n", k, "-v", v)
		require.NoError(t, err, "iscsiadm update %s: %s", k, out)
	}
	t.Cleanup(func() {
		_, _, _ = iscsiadm("-m", "node", "-T", e.TargetIQN, "-p", portal(e), "--logout")
		_, _, _ = iscsiadm("-m", "node", "-T", e.TargetIQN, "-p", portal(e), "-o", "delete")
	})
}

func login(e lio.Export) (string, int, error) {
	return iscsiadm("-m", "node", "-T", e.TargetIQN, "-p", portal(e), "--login")
}

func logout(t *testing.T, e lio.Export) {
	t.Helper()
	out, _, err := iscsiadm("-m", "node", "-T", e.TargetIQN, "-p", portal(e), "--logout")
	require.NoError(t, err, "logout: %s", out)
}

// sessionDisk finds /dev/sdX of the session to target iqn through sysfs
// (no udev in the lab), waiting for the SCSI scan.
func sessionDisk(t *testing.T, iqn string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		sessions, _ := filepath.Glob("/sys/class/iscsi_session/session*")
		for _, s := range sessions {
			name, _ := os.ReadFile(filepath.Join(s, "targetname"))
			if strings.TrimSpace(string(name)) != iqn {
				continue
			}
			blocks, _ := filepath.Glob(filepath.Join(s, "device", "target*", "*", "block", "*"))
			if len(blocks) > 0 {
				dev := "/dev/" + filepath.Base(blocks[0])
				ensureNode(t, blocks[0], dev)
				return dev
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no disk for a session to %s within 15 s", iqn)
	return ""
}

// ensureNode creates the device node from sysfs if devtmpfs did not.
func ensureNode(t *testing.T, sysBlock, dev string) {
	if _, err := os.Stat(dev); err == nil {
		return
	}
	b, err := os.ReadFile(filepath.Join(sysBlock, "dev"))
	require.NoError(t, err)
	var maj, min uint32
	_, err = fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min)
	require.NoError(t, err)
	// devtmpfs may make it between the Stat and here (CI failed so).
	if err := unix.Mknod(dev, unix.S_IFBLK|0o600, int(unix.Mkdev(maj, min))); !errors.Is(err, unix.EEXIST) {
		require.NoError(t, err)
	}
}

func TestKernelExportLoginWriteRead(t *testing.T) {
	r := kernelRoot(t)
	ctx := context.Background()
	const size = 16 << 20
	dev, backing := loopDev(t, size)
	e := kernelExport(t, r, dev)
	e.WWN = lio.WWN{UnitSerial: "lunferry-" + suffix(), VendorID: "LUNFERRY", ProductID: "kt"}

	start := time.Now()
	require.NoError(t, r.Apply(ctx, e))
	t.Logf("apply took %v", time.Since(start))

	nodeRecord(t, e, nil)
	start = time.Now()
	out, _, err := login(e)
	require.NoError(t, err, "login: %s", out)
	disk := sessionDisk(t, e.TargetIQN)
	t.Logf("login + scan took %v (%s)", time.Since(start), disk)

	// The disk carries the identity lio wrote.
	vendor, _ := os.ReadFile(filepath.Join("/sys/block", filepath.Base(disk), "device", "vendor"))
	assert.Equal(t, "LUNFERRY", strings.TrimSpace(string(vendor)))

	// Sessions sees the lab initiator.
	ss, err := r.Sessions(e.TargetIQN)
	require.NoError(t, err)
	require.Len(t, ss, 1)
	assert.Equal(t, labInitiator, ss[0].InitiatorIQN)
	assert.Equal(t, "LOGGED_IN", ss[0].State)
	t.Logf("session: %+v", ss[0])
	info, err := os.ReadFile(filepath.Join(lio.DefaultConfigFSRoot, "iscsi", e.TargetIQN, "tpgt_1", "acls", labInitiator, "info"))
	require.NoError(t, err)
	t.Logf("acl info:\n%s", info)

	// Read through the session what the backing file holds.
	want := make([]byte, 1<<20)
	bf, err := os.Open(backing)
	require.NoError(t, err)
	_, err = bf.ReadAt(want, 3<<20)
	require.NoError(t, err)
	require.NoError(t, bf.Close())
	f, err := os.OpenFile(disk, os.O_RDWR|unix.O_DIRECT, 0)
	require.NoError(t, err)
	got := alignedBuf(1 << 20)
	_, err = f.ReadAt(got, 3<<20)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "data read through the session differs from the backing file")

	// Write through the session, then find it in the backing file.
	pattern := alignedBuf(1 << 20)
	_, _ = rand.Read(pattern)
	_, err = f.WriteAt(pattern, 5<<20)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	onDisk := make([]byte, 1<<20)
	bf, err = os.Open(backing)
	require.NoError(t, err)
	_, err = bf.ReadAt(onDisk, 5<<20)
	require.NoError(t, err)
	require.NoError(t, bf.Close())
	assert.True(t, bytes.Equal(pattern, onDisk), "data written through the session is not in the backing file")

	// Teardown refuses while the initiator is logged in ...
	err = r.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{})
	var active *lio.SessionsActiveError
	require.ErrorAs(t, err, &active)
	assert.Equal(t, labInitiator, active.Sessions[0].InitiatorIQN)

	// ... and succeeds after logout, leaving no lunferry object.
	logout(t, e)
	start = time.Now()
	require.NoError(t, r.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{}))
	t.Logf("teardown took %v", time.Since(start))
	assertNoObjects(t, e)
}

// alignedBuf returns a 4096-aligned buffer for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := 4096 - int(uintptrOf(b)%4096)
	if off == 4096 {
		off = 0
	}
	return b[off : off+n]
}

func assertNoObjects(t *testing.T, e lio.Export) {
	t.Helper()
	_, err := os.Stat(filepath.Join(lio.DefaultConfigFSRoot, "iscsi", e.TargetIQN))
	assert.True(t, errors.Is(err, os.ErrNotExist), "target %s still in configfs", e.TargetIQN)
	m, _ := filepath.Glob(filepath.Join(lio.DefaultConfigFSRoot, "core", "*", e.Name))
	assert.Empty(t, m, "storage object %s still in configfs", e.Name)
}

func TestKernelCHAP(t *testing.T) {
	r := kernelRoot(t)
	ctx := context.Background()
	dev, _ := loopDev(t, 4<<20)

	t.Run("one-way", func(t *testing.T) {
		e := kernelExport(t, r, dev)
		e.ACLs[0].CHAP = &lio.CHAP{UserID: "proxy-" + suffix(), Password: "s3cret-" + suffix()}
		require.NoError(t, r.Apply(ctx, e))
		nodeRecord(t, e, map[string]string{
			"node.session.auth.authmethod": "CHAP",
			"node.session.auth.username":   e.ACLs[0].CHAP.UserID,
			"node.session.auth.password":   "wrong-" + suffix(),
		})
		out, rc, err := login(e)
		require.Error(t, err, "login with a wrong CHAP secret must fail: %s", out)
		t.Logf("wrong secret: iscsiadm exit %d: %s", rc, strings.TrimSpace(out))
		assert.Equal(t, 24, rc, "iscsiadm exit 24 is ISCSI_ERR_LOGIN_AUTH_FAILED")
		ss, err := r.Sessions(e.TargetIQN)
		require.NoError(t, err)
		assert.Empty(t, ss)

		out, _, err = iscsiadm("-m", "node", "-T", e.TargetIQN, "-p", portal(e), "-o", "update", "-n", "node.session.auth.password", "-v", e.ACLs[0].CHAP.Password)
		require.NoError(t, err, out)
		out, _, err = login(e)
		require.NoError(t, err, "login with the right secret: %s", out)
		sessionDisk(t, e.TargetIQN)
		logout(t, e)
		require.NoError(t, r.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{KeepStorageObjects: false}))
	})

	t.Run("mutual", func(t *testing.T) {
		e := kernelExport(t, r, dev)
		e.ACLs[0].CHAP = &lio.CHAP{UserID: "proxy-" + suffix(), Password: "s3cret-" + suffix(), MutualUserID: "target-" + suffix(), MutualPassword: "mutual-" + suffix()}
		require.NoError(t, r.Apply(ctx, e))
		c := e.ACLs[0].CHAP
		settings := map[string]string{
			"node.session.auth.authmethod":  "CHAP",
			"node.session.auth.username":    c.UserID,
			"node.session.auth.password":    c.Password,
			"node.session.auth.username_in": c.MutualUserID,
			"node.session.auth.password_in": "wrong-" + suffix(),
		}
		nodeRecord(t, e, settings)
		out, rc, err := login(e)
		require.Error(t, err, "login must fail when the target's secret does not match: %s", out)
		t.Logf("wrong mutual secret: iscsiadm exit %d: %s", rc, strings.TrimSpace(out))
		out, _, err = iscsiadm("-m", "node", "-T", e.TargetIQN, "-p", portal(e), "-o", "update", "-n", "node.session.auth.password_in", "-v", c.MutualPassword)
		require.NoError(t, err, out)
		out, _, err = login(e)
		require.NoError(t, err, "mutual CHAP login: %s", out)
		sessionDisk(t, e.TargetIQN)
		logout(t, e)
	})
}

func TestKernelACLRefusal(t *testing.T) {
	r := kernelRoot(t)
	ctx := context.Background()
	dev, _ := loopDev(t, 4<<20)
	e := kernelExport(t, r, dev)
	e.ACLs = []lio.ACL{{InitiatorIQN: "iqn.2026-11.io.lunferry.lab:someone-else"}}
	require.NoError(t, r.Apply(ctx, e))
	nodeRecord(t, e, nil)
	out, rc, err := login(e)
	require.Error(t, err, "an initiator without an ACL must not log in: %s", out)
	t.Logf("no ACL: iscsiadm exit %d: %s", rc, strings.TrimSpace(out))
	ss, err := r.Sessions(e.TargetIQN)
	require.NoError(t, err)
	assert.Empty(t, ss)
	// No demo-mode session either.
	dyn, err := os.ReadFile(filepath.Join(lio.DefaultConfigFSRoot, "iscsi", e.TargetIQN, "tpgt_1", "dynamic_sessions"))
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(dyn)))
}

func TestKernelIdempotentApplyAndDryRun(t *testing.T) {
	vmtest.Require(t)
	ctx := context.Background()
	dev, _ := loopDev(t, 4<<20)
	var ops []lio.Op
	rec := &lio.Recorder{Log: lio.RecordOps(&ops)}
	r := lio.NewRoot(lio.Options{FS: rec})
	e := kernelExport(t, r, dev)
	e.ACLs[0].CHAP = &lio.CHAP{UserID: "u-" + suffix(), Password: "p-" + suffix(), MutualUserID: "m-" + suffix(), MutualPassword: "q-" + suffix()}
	e.Portals = append(e.Portals, lio.Portal{Addr: netip.MustParseAddr("::1"), Port: 3260})
	e.TPGAttributes = map[string]string{"login_timeout": "10"}
	e.Attributes = map[string]string{"emulate_tpu": "1"}

	require.NoError(t, r.Apply(ctx, e))
	t.Logf("first apply: %d configfs changes", len(ops))
	assert.NotEmpty(t, ops)
	for _, o := range ops {
		assert.NotContains(t, o.String(), e.ACLs[0].CHAP.Password, "secret in the op log")
	}
	ops = nil
	require.NoError(t, r.Apply(ctx, e))
	assert.Empty(t, ops, "second apply changed configfs:\n%s", lio.FormatOps(ops))

	// A dry-run teardown reports the removals and changes nothing.
	var dry []lio.Op
	dr := lio.NewRoot(lio.Options{FS: &lio.Recorder{DryRun: true, Log: lio.RecordOps(&dry)}})
	require.NoError(t, dr.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{}))
	t.Logf("dry-run teardown:\n%s", lio.FormatOps(dry))
	assert.NotEmpty(t, dry)
	_, err := os.Stat(filepath.Join(lio.DefaultConfigFSRoot, "iscsi", e.TargetIQN, "tpgt_1", "lun", "lun_0"))
	require.NoError(t, err, "dry run removed the LUN")

	// A dry-run apply of a new export reports the creations and changes
	// nothing.
	dry = nil
	e2 := e
	e2.Name, e2.TargetIQN = lio.NamePrefix+"dry-"+suffix(), kernelIQNBase+"dry-"+suffix()
	require.NoError(t, dr.Apply(ctx, e2))
	t.Logf("dry-run apply: %d ops", len(dry))
	assert.NotEmpty(t, dry)
	_, err = os.Stat(filepath.Join(lio.DefaultConfigFSRoot, "iscsi", e2.TargetIQN))
	assert.True(t, errors.Is(err, os.ErrNotExist), "dry run created the target")
}

func TestKernelTargetcliReadsWhatLioWrote(t *testing.T) {
	r := kernelRoot(t)
	ctx := context.Background()
	dev, _ := loopDev(t, 4<<20)
	e := kernelExport(t, r, dev)
	e.ACLs[0].CHAP = &lio.CHAP{UserID: "u-" + suffix(), Password: "p-" + suffix()}
	e.WWN.UnitSerial = "lunferry-" + suffix()
	require.NoError(t, r.Apply(ctx, e))

	out, err := exec.Command("targetcli", "ls").CombinedOutput()
	require.NoError(t, err, "targetcli ls: %s", out)
	assert.Contains(t, string(out), e.TargetIQN)
	assert.Contains(t, string(out), e.Name)
	t.Logf("targetcli ls:\n%s", out)

	file := filepath.Join(t.TempDir(), "saveconfig.json")
	out, err = exec.Command("targetcli", "saveconfig", file).CombinedOutput()
	require.NoError(t, err, "targetcli saveconfig: %s", out)
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	theirs, err := lio.ParseSaveConfig(raw)
	require.NoError(t, err)

	ours, err := r.Dump(ctx)
	require.NoError(t, err)
	ourJSON, err := ours.MarshalIndent()
	require.NoError(t, err)

	// Everything lio dumps is what targetcli dumps for the same objects.
	owned := theirs.Owned()
	var tso, oso lio.StorageObjectConfig
	for _, so := range owned.StorageObjects {
		if so.Name == e.Name {
			tso = so
		}
	}
	for _, so := range ours.StorageObjects {
		if so.Name == e.Name {
			oso = so
		}
	}
	require.Equal(t, e.Name, tso.Name, "targetcli's dump lacks %s:\n%s", e.Name, raw)
	assert.Equal(t, jsonOf(t, tso), jsonOf(t, oso), "storage object differs from targetcli's dump")
	var tt, ot lio.TargetConfig
	for _, tc := range owned.Targets {
		if tc.WWN == e.TargetIQN {
			tt = tc
		}
	}
	for _, tc := range ours.Targets {
		if tc.WWN == e.TargetIQN {
			ot = tc
		}
	}
	require.Equal(t, e.TargetIQN, tt.WWN, "targetcli's dump lacks %s, or lio does not see it as lunferry's", e.TargetIQN)
	assert.Equal(t, jsonOf(t, tt), jsonOf(t, ot), "target differs from targetcli's dump")
	t.Logf("lio dump:\n%s", ourJSON)

	// Restore from targetcli's file after a teardown gives the same tree.
	require.NoError(t, r.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{}))
	one := &lio.SaveConfig{StorageObjects: []lio.StorageObjectConfig{tso}, Targets: []lio.TargetConfig{tt}}
	require.NoError(t, r.Restore(ctx, one))
	again, err := r.Dump(ctx)
	require.NoError(t, err)
	var rt lio.TargetConfig
	for _, tc := range again.Targets {
		if tc.WWN == e.TargetIQN {
			rt = tc
		}
	}
	assert.Equal(t, jsonOf(t, tt), jsonOf(t, rt), "restored target differs")

	// And targetcli still reads it.
	out, err = exec.Command("targetcli", "ls", "/iscsi/"+e.TargetIQN).CombinedOutput()
	require.NoError(t, err, "targetcli ls after restore: %s", out)

	// targetcli restoreconfig loads what lio dumped.
	require.NoError(t, r.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{}))
	ourFile := filepath.Join(t.TempDir(), "lunferry.json")
	require.NoError(t, os.WriteFile(ourFile, ourJSON, 0o600))
	out, err = exec.Command("targetcli", "restoreconfig", ourFile).CombinedOutput()
	t.Logf("targetcli restoreconfig: %s", out)
	require.NoError(t, err, "targetcli restoreconfig: %s", out)
	assert.NotContains(t, string(out), "skipped", "targetcli could not restore everything lio dumped")
	st, err := r.Describe(ctx, e.TargetIQN)
	require.NoError(t, err)
	assert.True(t, st.Owned, "after targetcli restoreconfig the target is still lunferry's: %s", st.NotOwnedReason)
	assert.Equal(t, jsonOf(t, ot), jsonOf(t, st.Config), "target restored by targetcli differs")
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	require.NoError(t, err)
	return string(b)
}

func TestKernelFileIOAndRamdisk(t *testing.T) {
	r := kernelRoot(t)
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "lun.img")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.NoError(t, os.Truncate(file, 8<<20))

	e := kernelExport(t, r, file)
	e.Backstore, e.Size = lio.BackstoreFileIO, 8<<20
	t.Cleanup(func() { _ = r.DeleteStorageObject(ctx, lio.BackstoreFileIO, e.Name) })
	require.NoError(t, r.Apply(ctx, e))
	require.NoError(t, r.Apply(ctx, e))
	st, err := r.Describe(ctx, e.TargetIQN)
	require.NoError(t, err)
	require.Len(t, st.StorageObjects, 1)
	assert.Equal(t, file, st.StorageObjects[0].Dev)
	require.NotNil(t, st.StorageObjects[0].Size)
	assert.Equal(t, uint64(8<<20), *st.StorageObjects[0].Size)
	require.NoError(t, r.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{}))
	assertNoObjects(t, e)

	rd := kernelExport(t, r, "")
	rd.Backstore, rd.Size = lio.BackstoreRamdisk, 4<<20
	t.Cleanup(func() { _ = r.DeleteStorageObject(ctx, lio.BackstoreRamdisk, rd.Name) })
	require.NoError(t, r.Apply(ctx, rd))
	st, err = r.Describe(ctx, rd.TargetIQN)
	require.NoError(t, err)
	require.NotNil(t, st.StorageObjects[0].Size)
	assert.Equal(t, uint64(4<<20), *st.StorageObjects[0].Size)
	require.NoError(t, r.Teardown(ctx, rd.TargetIQN, lio.TeardownOptions{}))
	assertNoObjects(t, rd)
}

func TestKernelForeignTargetUntouched(t *testing.T) {
	r := kernelRoot(t)
	ctx := context.Background()
	dev, _ := loopDev(t, 4<<20)
	e := kernelExport(t, r, dev)
	// A target made with targetcli, as an admin would.
	out, err := exec.Command("targetcli", "/iscsi", "create", e.TargetIQN).CombinedOutput()
	require.NoError(t, err, "targetcli create: %s", out)
	t.Cleanup(func() { _ = exec.Command("targetcli", "/iscsi", "delete", e.TargetIQN).Run() })
	out, err = exec.Command("targetcli", "/iscsi/"+e.TargetIQN+"/tpg1/acls", "create", "iqn.2026-11.io.example:someone").CombinedOutput()
	require.NoError(t, err, "targetcli acls create: %s", out)

	err = r.Apply(ctx, e)
	require.ErrorIs(t, err, lio.ErrNotOwned)
	t.Logf("apply over a targetcli target: %v", err)
	err = r.Teardown(ctx, e.TargetIQN, lio.TeardownOptions{Force: true})
	require.ErrorIs(t, err, lio.ErrNotOwned)
	_, err = os.Stat(filepath.Join(lio.DefaultConfigFSRoot, "iscsi", e.TargetIQN, "tpgt_1"))
	require.NoError(t, err, "the foreign target's TPG must still be there")
	// The storage object lio created for the refused apply was rolled back.
	m, _ := filepath.Glob(filepath.Join(lio.DefaultConfigFSRoot, "core", "*", e.Name))
	assert.Empty(t, m)
	out, err = exec.Command("targetcli", "/iscsi", "delete", e.TargetIQN).CombinedOutput()
	require.NoError(t, err, "targetcli delete: %s", out)
}

func TestKernelReadOnlyExport(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*lio.Export)
	}{
		// The whole export: the device is opened read-only too.
		{"device", func(e *lio.Export) { e.ReadOnly = true }},
		// One initiator's mapping on a writable device.
		{"acl", func(e *lio.Export) { e.ACLs[0].ReadOnly = true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := kernelRoot(t)
			ctx := context.Background()
			dev, backing := loopDev(t, 4<<20)
			before, err := os.ReadFile(backing)
			require.NoError(t, err)
			var ops []lio.Op
			rr := lio.NewRoot(lio.Options{FS: &lio.Recorder{Log: lio.RecordOps(&ops)}})
			e := kernelExport(t, r, dev)
			c.mod(&e)
			require.NoError(t, rr.Apply(ctx, e))
			tpgDir := filepath.Join(lio.DefaultConfigFSRoot, "iscsi", e.TargetIQN, "tpgt_1")
			wp, err := os.ReadFile(filepath.Join(tpgDir, "acls", labInitiator, "lun_0", "write_protect"))
			require.NoError(t, err)
			assert.Equal(t, "1", strings.TrimSpace(string(wp)), "read-only from the first apply on")
			pm, err := os.ReadFile(filepath.Join(tpgDir, "attrib", "prod_mode_write_protect"))
			require.NoError(t, err)
			assert.Equal(t, "0", strings.TrimSpace(string(pm)))
			ops = nil
			require.NoError(t, rr.Apply(ctx, e))
			assert.Empty(t, ops, "second apply changed configfs:\n%s", lio.FormatOps(ops))

			nodeRecord(t, e, nil)
			out, _, err := login(e)
			require.NoError(t, err, "login: %s", out)
			disk := sessionDisk(t, e.TargetIQN)
			// The initiator sees a write-protected disk ...
			deadline := time.Now().Add(5 * time.Second)
			ro := ""
			for time.Now().Before(deadline) {
				b, _ := os.ReadFile(filepath.Join("/sys/block", filepath.Base(disk), "ro"))
				if ro = strings.TrimSpace(string(b)); ro == "1" {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			assert.Equal(t, "1", ro, "the kernel should mark %s read-only", disk)
			// ... reads work, and no write reaches the backing file.
			f, err := os.Open(disk)
			require.NoError(t, err)
			buf := make([]byte, 4096)
			_, err = f.ReadAt(buf, 0)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			assert.Equal(t, before[:4096], buf)
			if w, err := os.OpenFile(disk, os.O_WRONLY|unix.O_DIRECT, 0); err == nil {
				_, werr := w.WriteAt(alignedBuf(4096), 0)
				serr := w.Sync()
				_ = w.Close()
				assert.True(t, werr != nil || serr != nil, "a write to a read-only export succeeded")
				t.Logf("write to read-only export: %v / %v", werr, serr)
			} else {
				t.Logf("open read-only export for writing: %v", err)
			}
			after, err := os.ReadFile(backing)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(before, after), "the backing file changed behind a read-only export")
			logout(t, e)
		})
	}
}

// TestKernelServes: TPG.Serves on the kernel's configfs: true for the
// export as applied; false for another device, another initiator, the
// TPG disabled, and the storage object's path when it names another
// device now (iblock's info keeps the numbers it opened).
func TestKernelServes(t *testing.T) {
	r := kernelRoot(t)
	ctx := context.Background()
	dev, _ := loopDev(t, 4<<20)
	other, _ := loopDev(t, 4<<20)
	rdev := func(p string) uint64 {
		var st unix.Stat_t
		require.NoError(t, unix.Stat(p, &st))
		return st.Rdev
	}
	// The export opens a node of its own, made again later as another
	// device (what a /dev/dm-N whose number changed looks like).
	node := filepath.Join(t.TempDir(), "node")
	require.NoError(t, unix.Mknod(node, unix.S_IFBLK|0o600, int(rdev(dev))))
	e := kernelExport(t, r, node)
	require.NoError(t, r.Apply(ctx, e))
	g := r.Target(e.TargetIQN).TPG(1)
	serves := func(dev, host string) bool {
		t.Helper()
		ok, err := g.Serves(e.Name, dev, host)
		require.NoError(t, err)
		return ok
	}
	require.True(t, serves(node, labInitiator))
	require.False(t, serves(other, labInitiator), "another device")
	require.False(t, serves(node, "iqn.2026-11.io.lunferry.test:nobody"), "another initiator")
	ok, err := r.Target(e.TargetIQN).TPG(2).Serves(e.Name, node, labInitiator)
	require.NoError(t, err)
	require.False(t, ok, "TPG 2")

	require.NoError(t, g.SetEnabled(false))
	require.False(t, serves(node, labInitiator), "TPG disabled")
	require.NoError(t, g.SetEnabled(true))
	require.True(t, serves(node, labInitiator))

	// The udev_path attribute is a label: Serves reads what iblock opened
	// from its info ("UDEV PATH: ..." and the numbers).
	so, err := r.LookupStorageObject(lio.BackstoreBlock, e.Name)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(so.Path, "udev_path"), []byte(other), 0))
	require.True(t, serves(node, labInitiator), "udev_path relabelled %s", other)
	require.False(t, serves(other, labInitiator), "relabelled, still opened by %s", node)

	require.NoError(t, os.Remove(node))
	require.NoError(t, unix.Mknod(node, unix.S_IFBLK|0o600, int(rdev(other))))
	require.False(t, serves(node, labInitiator), "the path names another device now")
}
