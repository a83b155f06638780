package scsi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/lio"
)

// prHostIQN is the initiator name of the second nexus. A second session
// of the proxy's own initiator name, to another portal of the same target
// port, passed the fence in the lab: LIO took it for the same I_T nexus.
// The "host" is another initiator, as a real one is.
const prHostIQN = "iqn.2026-11.io.lunferry.test:prhost"

// twoNexusDisk exports one LIO LUN on two portals and logs in to it from
// the lab's initiator and, as the lab's host does, from prHostIQN:
// two disks of one logical unit, as the proxy and a host's direct path
// see it.
func twoNexusDisk(t *testing.T) (a, b initiator.Disk) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, lio.NewRoot(lio.Options{}).EnsurePRDir())
	var s [4]byte
	_, _ = rand.Read(s[:])
	id := hex.EncodeToString(s[:])
	e := lio.Export{
		Name: lio.NamePrefix + "pr-" + id, Device: vmtest.LoopDevice(t, kernelDiskSize),
		WWN:       lio.WWN{UnitSerial: "5eed" + id},
		TargetIQN: "iqn.2026-11.io.lunferry.test:pr-" + id,
		Portals:   []lio.Portal{{Addr: netip.AddrFrom4([4]byte{127, 0, 1, 1})}, {Addr: netip.AddrFrom4([4]byte{127, 0, 1, 2})}},
		ACLs:      []lio.ACL{{InitiatorIQN: labInitiator}, {InitiatorIQN: prHostIQN}},
	}
	r := lio.NewRoot(lio.Options{})
	t.Cleanup(func() {
		if err := r.Teardown(context.Background(), e.TargetIQN, lio.TeardownOptions{Force: true}); err != nil {
			t.Errorf("cleanup teardown: %v", err)
		}
	})
	require.NoError(t, r.Apply(ctx, e))
	proxy, err := initiator.New(initiator.Options{Runner: initiator.ExecRunner{}})
	require.NoError(t, err)
	n := initiator.Node{TargetIQN: e.TargetIQN, Portal: initiator.Portal{Addr: e.Portals[0].Addr, Port: lio.DefaultPort}}
	t.Cleanup(func() {
		if err := proxy.Logout(context.Background(), n); err != nil {
			t.Errorf("cleanup logout: %v", err)
		}
	})
	require.NoError(t, proxy.Login(ctx, n, initiator.LoginOptions{}))
	pd, err := proxy.FindDisk(ctx, n, 0, 10*time.Second)
	require.NoError(t, err)
	// The host logs in as the lab's host does: its own iface, its own
	// initiator name.
	h := &lab.Host{Iface: "lfprhost", IQN: prHostIQN}
	hostPortal := fmt.Sprintf("%s:%d", e.Portals[1].Addr, lio.DefaultPort)
	t.Cleanup(func() {
		if err := h.Logout(hostPortal, e.TargetIQN); err != nil {
			t.Errorf("cleanup host logout: %v", err)
		}
		_ = exec.Command("iscsiadm", "-m", "iface", "-I", h.Iface, "-o", "delete").Run()
	})
	hd, err := h.Login(hostPortal, e.TargetIQN, 10*time.Second)
	require.NoError(t, err)
	disks := []initiator.Disk{pd, {Path: hd, Name: filepath.Base(hd)}}
	require.NotEqual(t, disks[0].Path, disks[1].Path)
	sess, err := r.Sessions(e.TargetIQN)
	require.NoError(t, err)
	var who []string
	for _, s := range sess {
		who = append(who, s.InitiatorIQN)
	}
	t.Logf("sessions on %s: %v; disks %s, %s", e.TargetIQN, who, disks[0].Path, disks[1].Path)
	require.ElementsMatch(t, []string{labInitiator, prHostIQN}, who, "two initiators, two nexuses")
	return disks[0], disks[1]
}

// direct does one 4 KiB O_DIRECT read or write at offset 0 of dev.
func direct(t *testing.T, dev string, write bool) error {
	t.Helper()
	flag := os.O_RDONLY
	if write {
		flag = os.O_WRONLY
	}
	f, err := os.OpenFile(dev, flag|unix.O_DIRECT, 0)
	require.NoError(t, err)
	defer f.Close()
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	require.NoError(t, err)
	defer unix.Munmap(buf)
	if write {
		copy(buf, "lunferry fence test")
		_, err = f.WriteAt(buf, 0)
		return err
	}
	_, err = f.ReadAt(buf, 0)
	return err
}

// The fence on a LIO LUN: after it, a write through another I_T nexus
// gets RESERVATION CONFLICT (EBADE to the writer) while reads work; the
// fencing nexus writes; unfence lets the other nexus write again and
// leaves no key. Fencing again from the other nexus under the same key
// takes the reservation over (the proxy's session after a reboot).
func TestKernelFence(t *testing.T) {
	vmtest.Require(t)
	proxy, host := twoNexusDisk(t)
	const key = 0x4c46000000c0ffee
	require.NoError(t, direct(t, host.Path, true), "no fence: the host writes")

	require.NoError(t, Fence(proxy.Path, key))
	r, err := ReadReservations(host.Path)
	require.NoError(t, err)
	t.Logf("fenced: keys %x, reservation %+v", r.Keys, r.Reservation)
	assert.True(t, Fenced(r, key))

	err = direct(t, host.Path, true)
	require.Error(t, err, "a write through the unregistered nexus")
	assert.ErrorIs(t, err, unix.EBADE, "RESERVATION CONFLICT reaches the writer as EBADE")
	assert.NoError(t, direct(t, host.Path, false), "reads still work")
	assert.NoError(t, direct(t, proxy.Path, true), "the registered nexus writes")
	require.NoError(t, Fence(proxy.Path, key), "fencing again changes nothing")

	require.NoError(t, Fence(host.Path, key), "the same key through another nexus takes the reservation over")
	require.Error(t, direct(t, proxy.Path, true), "the preempted nexus lost its registration")
	require.NoError(t, Unfence(proxy.Path, key), "unfence from a nexus that lost it")
	r, err = ReadReservations(proxy.Path)
	require.NoError(t, err)
	assert.Empty(t, r.Keys)
	assert.Nil(t, r.Reservation)
	assert.NoError(t, direct(t, host.Path, true), "released: the host writes again")
	assert.NoError(t, direct(t, proxy.Path, true))
}
