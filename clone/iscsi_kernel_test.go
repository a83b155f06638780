package clone

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// iscsiLUN exports a loop device of size bytes as an LIO iSCSI LUN on
// portal, logs the proxy in and returns the disk. Everything is undone at
// cleanup.
func iscsiLUN(t *testing.T, ic *initiator.Client, role, portal string, size int64) initiator.Disk {
	t.Helper()
	ctx := context.Background()
	suffix := strings.TrimPrefix(vmtest.RandomName("x"), "lunferry-x-")
	a := &lab.Array{
		Name:     "clt-" + role + "-" + suffix,
		IQN:      "iqn.2026-11.io.lunferry.lab:clt-" + role + "-" + suffix,
		Portals:  []string{portal},
		Backing:  vmtest.LoopDevice(t, size),
		ACLs:     []string{lab.ProxyInitiatorName()},
		HBAIndex: lab.RandomHBAIndex(),
	}
	require.NoError(t, a.Up())
	t.Cleanup(func() {
		if err := a.Down(); err != nil {
			t.Errorf("cleanup: array %s: %v", a.Name, err)
		}
	})
	p, err := initiator.ParsePortal(portal)
	require.NoError(t, err)
	n := initiator.Node{TargetIQN: a.IQN, Portal: p}
	require.NoError(t, ic.Login(ctx, n, initiator.LoginOptions{}))
	t.Cleanup(func() {
		if err := ic.Logout(context.Background(), n); err != nil {
			t.Errorf("cleanup: logout %s: %v", n, err)
		}
	})
	d, err := ic.FindDisk(ctx, n, 0, 30*time.Second)
	require.NoError(t, err)
	return d
}

// TestKernelHydrationOverISCSI measures hydration between two iSCSI LUNs
// (source and destination on LIO targets, as a migration sees them) with
// the kernel defaults and with the tuned settings, and throttles it.
func TestKernelHydrationOverISCSI(t *testing.T) {
	vmtest.Require(t)
	const size = 16 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ic, err := initiator.New(initiator.Options{})
	require.NoError(t, err)
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })

	src := iscsiLUN(t, ic, "old", "127.0.0.3:3260", size)
	dst := iscsiLUN(t, ic, "new", "127.0.0.4:3260", size)
	t.Logf("old LUN %s, new LUN %s", src.Path, dst.Path)

	// hydrate builds a fresh clone (new metadata) and hydrates it all: with
	// the kernel defaults (mode "defaults"), or under a Regulator driven
	// like the plan's loop (rounds of 250 ms in mode "fast", of 1 s in
	// mode "tick", plus the early wake-ups the Regulator asks for). It
	// returns the average rate and the last status.
	hydrate := func(t *testing.T, region uint64, mode string, target Rate) (float64, dm.CloneStatus) {
		meta := vmtest.LoopDevice(t, 4<<20)
		name := vmtest.RandomName("lunferry-clt-iscsi")
		uuid := dm.UUIDPrefix + strings.TrimPrefix(name, dm.NamePrefix)
		table := dm.Table{{Length: dm.Sectors(size / dm.SectorSize), Target: dm.Clone{
			Metadata: meta, Destination: dst.Path, Source: src.Path, RegionSize: dm.Sectors(region), NoHydration: true}}}
		_, err := c.Create(ctx, name, uuid, table)
		require.NoError(t, err)
		defer func() {
			if err := c.Remove(context.Background(), name, dm.RemoveOptions{Retries: 20}); err != nil && !errors.Is(err, dm.ErrNotFound) {
				t.Errorf("remove %s: %v", name, err)
			}
		}()
		start := time.Now()
		var st dm.CloneStatus
		switch mode {
		case "fast", "tick":
			interval := time.Second
			if mode == "fast" {
				interval = 250 * time.Millisecond
			}
			var steps int
			st, steps, err = newHydrator(c, name, interval, target).run(ctx, nil)
			require.NoError(t, err)
			t.Logf("%s: %d steps (rounds and light steps) in %v", mode, steps, time.Since(start).Round(time.Millisecond))
		default:
			require.NoError(t, c.EnableHydration(ctx, name))
			vmtest.WaitFor(t, 4*time.Minute, "hydration with the kernel defaults", func() bool {
				st, err = c.CloneStatus(ctx, name)
				require.NoError(t, err)
				return st.Hydrated()
			})
		}
		return float64(size) / time.Since(start).Seconds(), st
	}

	defaults, _ := hydrate(t, RecommendedRegionSize, "defaults", 0)
	tuned, st := hydrate(t, RecommendedRegionSize, "fast", Unlimited)
	t.Logf("iSCSI, 16 MiB, region 128 sectors: tuned (threshold %d, batch %d) %.1f MiB/s, kernel defaults %.1f MiB/s (%.2fx)",
		st.HydrationThreshold, st.HydrationBatchSize, tuned/float64(MiB), defaults/float64(MiB), tuned/defaults)
	assert.Greater(t, tuned, 0.8*defaults, "the tuned settings must not be slower over iSCSI")

	target := 2 * MiB
	for _, mode := range []string{"fast", "tick"} {
		throttled, st := hydrate(t, RecommendedRegionSize, mode, target)
		t.Logf("iSCSI, 16 MiB throttled to %v (%s): %.2f MiB/s average over the whole hydration (last threshold %d)", target, mode, throttled/float64(MiB), st.HydrationThreshold)
		assert.LessOrEqual(t, throttled, 1.5*float64(target), mode)
		assert.GreaterOrEqual(t, throttled, 0.5*float64(target), mode)
	}
}
