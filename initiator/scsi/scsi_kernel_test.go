package scsi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/lio"
)

func TestMain(m *testing.M) { os.Exit(vmtest.LeakCheck(m)) }

// labInitiator is the lab guest's initiator name (integration/vm writes
// it to /etc/iscsi/initiatorname.iscsi).
const labInitiator = "iqn.2026-11.io.lunferry.lab:proxy"

const kernelDiskSize = 64 << 20

// kernelDisk is a LIO export of a fresh loop device with the given
// identity and attributes, logged in to through open-iscsi: the disk the
// proxy would see. Everything is undone at cleanup.
type kernelDisk struct {
	export lio.Export
	disk   initiator.Disk
}

func newKernelDisk(t *testing.T, wwn lio.WWN, attrs map[string]string) kernelDisk {
	t.Helper()
	ctx := context.Background()
	dev := vmtest.LoopDevice(t, kernelDiskSize)
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	e := lio.Export{
		Name:       lio.NamePrefix + "scsi-" + s,
		Device:     dev,
		WWN:        wwn,
		Attributes: attrs,
		TargetIQN:  "iqn.2026-11.io.lunferry.test:scsi-" + s,
		Portals:    []lio.Portal{{Addr: netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + mrand.IntN(240))})}},
		ACLs:       []lio.ACL{{InitiatorIQN: labInitiator}},
	}
	r := lio.NewRoot(lio.Options{})
	t.Cleanup(func() {
		if err := r.Teardown(context.Background(), e.TargetIQN, lio.TeardownOptions{Force: true}); err != nil {
			t.Errorf("cleanup teardown: %v", err)
		}
	})
	require.NoError(t, r.Apply(ctx, e))

	c, err := initiator.New(initiator.Options{Runner: initiator.ExecRunner{}})
	require.NoError(t, err)
	n := initiator.Node{TargetIQN: e.TargetIQN, Portal: initiator.Portal{Addr: e.Portals[0].Addr, Port: lio.DefaultPort}}
	t.Cleanup(func() {
		if err := c.Logout(context.Background(), n); err != nil {
			t.Errorf("cleanup logout: %v", err)
		}
	})
	require.NoError(t, c.Login(ctx, n, initiator.LoginOptions{}))
	d, err := c.FindDisk(ctx, n, 0, 10*time.Second)
	require.NoError(t, err)
	return kernelDisk{export: e, disk: d}
}

// sysfs reads an attribute of the disk's sysfs directory.
func (k kernelDisk) sysfs(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/block", k.disk.Name, rel))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// luDesignators are the designators of the logical unit.
func luDesignators(ds []Designator) []Designator {
	var out []Designator
	for _, d := range ds {
		if d.Association == AssocLogicalUnit {
			out = append(out, d)
		}
	}
	return out
}

// An "old array" with NetApp's company id and serial digits, read over
// SG_IO, then reproduced by a second export from ForLIO's settings: the
// host sees the same WWID, strings and sizes on both.
func TestKernelReadAndReproduceIdentity(t *testing.T) {
	vmtest.Require(t)
	old := newKernelDisk(t, lio.WWN{CompanyID: 0x00a098, UnitSerial: "038304871683f42767830526b", VendorID: "NETAPP", ProductID: "LUN C-Mode", Revision: "9141"}, nil)
	start := time.Now()
	id, err := Read(old.disk.Path)
	require.NoError(t, err)
	t.Logf("read identity of %s in %s: wwid %s, pages % x", old.disk.Path, time.Since(start).Round(time.Microsecond), id.WWID(), []byte(id.Pages))
	for _, d := range id.Designators {
		t.Logf("  %s", d)
	}

	// TPGS 3: LIO's default target port group does implicit and explicit ALUA.
	assert.Equal(t, Inquiry{DeviceType: DeviceTypeDisk, Version: 6, Vendor: "NETAPP", Product: "LUN C-Mode", Revision: "9141", TPGS: 3, ThirdPartyCopy: true}, id.Inquiry)
	assert.Equal(t, "038304871683f42767830526b", id.UnitSerial)
	assert.Equal(t, "naa.600a098038304871683f42767830526b", id.WWID())
	assert.Equal(t, old.sysfs(t, "device/wwid"), id.WWID(), "HostWWID agrees with the kernel")
	assert.Equal(t, old.disk.ID, id.WWID())
	assert.Equal(t, HexBytes{0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2, 0xb3}, id.Pages)
	require.NotNil(t, id.BlockLimits)
	require.NotNil(t, id.Provisioning)
	assert.Equal(t, uint64(kernelDiskSize), id.Capacity.Bytes())
	assert.Equal(t, uint32(512), id.Capacity.LogicalBlockSize)
	assert.Equal(t, old.sysfs(t, "queue/physical_block_size"), fmt.Sprint(id.Capacity.PhysicalBlockSize()))

	e, v := ForLIO(id, "vol1")
	t.Logf("export: %+v; verdict: %+v", e, v)
	require.True(t, v.Exact, v.Reason)
	assert.Empty(t, v.Notes, "LIO to LIO: every logical-unit designator is carried")
	assert.Equal(t, uint32(0x00a098), e.WWN.CompanyID)

	proxy := newKernelDisk(t, e.WWN, map[string]string{"block_size": fmt.Sprint(e.BlockSize)})
	got, err := Read(proxy.disk.Path)
	require.NoError(t, err)
	t.Logf("through the proxy's export: wwid %s (sysfs %s)", got.WWID(), proxy.sysfs(t, "device/wwid"))
	assert.Equal(t, id.WWID(), got.WWID())
	assert.Equal(t, id.WWID(), proxy.sysfs(t, "device/wwid"))
	assert.Equal(t, luDesignators(id.Designators), luDesignators(got.Designators), "NAA, T10 vendor ID and LU group")
	assert.Equal(t, id.Inquiry, got.Inquiry)
	assert.Equal(t, id.UnitSerial, got.UnitSerial)
	assert.Equal(t, id.Capacity, got.Capacity)
	assert.Equal(t, old.sysfs(t, "device/vendor"), proxy.sysfs(t, "device/vendor"))
	assert.Equal(t, old.sysfs(t, "device/model"), proxy.sysfs(t, "device/model"))
}

func TestKernelBlockSize4096(t *testing.T) {
	vmtest.Require(t)
	k := newKernelDisk(t, lio.WWN{UnitSerial: "lunferry-4k-0123456789abcdef"}, map[string]string{"block_size": "4096"})
	id, err := Read(k.disk.Path)
	require.NoError(t, err)
	t.Logf("4096-byte export: %+v; sysfs logical %s physical %s", id.Capacity, k.sysfs(t, "queue/logical_block_size"), k.sysfs(t, "queue/physical_block_size"))
	assert.Equal(t, uint32(4096), id.Capacity.LogicalBlockSize)
	assert.Equal(t, uint64(kernelDiskSize/4096-1), id.Capacity.LastLBA)
	assert.Equal(t, "4096", k.sysfs(t, "queue/logical_block_size"))
	assert.Equal(t, k.sysfs(t, "queue/physical_block_size"), fmt.Sprint(id.Capacity.PhysicalBlockSize()))
	assert.Equal(t, LIOWWID(0x001405, "lunferry-4k-0123456789abcdef"), id.WWID())
	e, _ := ForLIO(id, "vol1")
	assert.Equal(t, uint32(4096), e.BlockSize)
}

func sgPersist(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("sg_persist", args...).CombinedOutput()
	require.NoError(t, err, "sg_persist %s: %s", strings.Join(args, " "), out)
}

// prDir makes LIO's PR metadata directory, <dbroot>/pr: LIO rewrites
// pr/aptpl_<unit serial> there on every registration change, with APTPL
// or without, and fails PERSISTENT RESERVE OUT with NOT READY, LOGICAL
// UNIT COMMUNICATION FAILURE when it cannot (the lab guest has no such
// directory).
func prDir(t *testing.T) {
	t.Helper()
	root, err := os.ReadFile(filepath.Join(lio.DefaultConfigFSRoot, "dbroot"))
	require.NoError(t, err)
	dir := filepath.Join(strings.TrimSpace(string(root)), "pr")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	t.Logf("LIO's PR metadata directory: %s", dir)
}

func TestKernelPersistentReservations(t *testing.T) {
	vmtest.Require(t)
	prDir(t)
	k := newKernelDisk(t, lio.WWN{UnitSerial: "lunferry-pr-" + fmt.Sprint(mrand.Uint32())}, nil)
	r, err := ReadReservations(k.disk.Path)
	require.NoError(t, err)
	assert.Empty(t, r.Keys)
	assert.Nil(t, r.Reservation)
	gen := r.Generation

	sgPersist(t, "--out", "--register", "--param-sark=0x1234abcd", k.disk.Path)
	t.Cleanup(func() {
		_ = exec.Command("sg_persist", "--out", "--release", "--param-rk=0x1234abcd", "--prout-type=1", k.disk.Path).Run()
		_ = exec.Command("sg_persist", "--out", "--register", "--param-rk=0x1234abcd", "--param-sark=0", k.disk.Path).Run()
	})
	r, err = ReadReservations(k.disk.Path)
	require.NoError(t, err)
	assert.Equal(t, []uint64{0x1234abcd}, r.Keys)
	assert.Nil(t, r.Reservation)
	assert.Greater(t, r.Generation, gen)

	sgPersist(t, "--out", "--reserve", "--param-rk=0x1234abcd", "--prout-type=1", k.disk.Path)
	r, err = ReadReservations(k.disk.Path)
	require.NoError(t, err)
	t.Logf("after register and reserve: generation %d, keys %#x, reservation %+v", r.Generation, r.Keys, *r.Reservation)
	assert.Equal(t, &Reservation{Key: 0x1234abcd, Type: 1}, r.Reservation)
}

func TestKernelNotASCSIDisk(t *testing.T) {
	vmtest.Require(t)
	dev := vmtest.LoopDevice(t, 1<<20)
	_, err := Read(dev)
	require.Error(t, err)
	t.Logf("read identity of %s: %v", dev, err)
	assert.Contains(t, err.Error(), "not a SCSI device")
}
