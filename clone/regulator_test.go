package clone

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sendTo applies dm-clone messages to the simulated device, as the plan's
// Mapper.Message would.
func sendTo(t *testing.T, dev *simDevice, msgs []string) {
	t.Helper()
	ctx := context.Background()
	for _, m := range msgs {
		f := strings.Fields(m)
		switch {
		case m == MsgEnableHydration:
			require.NoError(t, dev.SetHydration(ctx, true))
		case m == MsgDisableHydration:
			require.NoError(t, dev.SetHydration(ctx, false))
		case len(f) == 2 && f[0] == "hydration_threshold":
			n, err := strconv.Atoi(f[1])
			require.NoError(t, err)
			require.NoError(t, dev.SetThreshold(ctx, uint(n)))
		case len(f) == 2 && f[0] == "hydration_batch_size":
			n, err := strconv.Atoi(f[1])
			require.NoError(t, err)
			require.NoError(t, dev.SetBatchSize(ctx, uint(n)))
		default:
			t.Fatalf("unknown message %q", m)
		}
	}
}

// regulate runs a fixed-tick loop like plan.Tick against dev for d.
func regulate(t *testing.T, r *Regulator, name string, clk *fakeClock, dev *simDevice, target Rate, tick, d time.Duration, withSettings bool) []point {
	t.Helper()
	end := clk.Now().Add(d)
	pts := []point{{clk.Now(), dev.bytesAt()}}
	for clk.Now().Before(end) {
		p, err := dev.Progress(context.Background())
		require.NoError(t, err)
		if !withSettings {
			p.HydrationEnabled, p.Threshold, p.BatchSize = false, 0, 0
		}
		sendTo(t, dev, r.Regulate(name, p, clk.Now(), target))
		clk.Advance(tick)
		pts = append(pts, point{clk.Now(), dev.bytesAt()})
	}
	return pts
}

func TestRegulatorFirstCallSendsEverySetting(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	r := NewRegulator(RegulatorOptions{})
	p, err := dev.Progress(context.Background())
	require.NoError(t, err)
	p.Threshold, p.BatchSize = 0, 0
	msgs := r.Regulate("vol1", p, clk.Now(), Unlimited)
	assert.Equal(t, []string{"hydration_batch_size 16", "hydration_threshold 64", "enable_hydration"}, msgs)
	// Nothing changes: nothing to send.
	clk.Advance(time.Second)
	p.HydratedRegions += 100
	assert.Empty(t, r.Regulate("vol1", p, clk.Now(), Unlimited))
	// After Forget, everything is sent again (the plan paused and resumed).
	r.Forget("vol1")
	clk.Advance(time.Second)
	assert.Len(t, r.Regulate("vol1", p, clk.Now(), Unlimited), 3)
	_, ok := r.Snapshot("vol1")
	assert.True(t, ok)
}

func TestRegulatorReachesTarget(t *testing.T) {
	for _, tc := range []struct {
		name         string
		target       Rate
		tick         time.Duration
		withSettings bool
		peakWindow   time.Duration
	}{
		{"1s tick", 10 * MiB, time.Second, false, 20 * time.Second},
		{"2s tick, plan default", 10 * MiB, 2 * time.Second, false, 20 * time.Second},
		// One region in flight copies ~20 MB/s, so each 2 s tick that has
		// hydration on copies ~40 MB: 20 s worth of the target. The
		// throttle holds only over spans of several such bursts.
		{"2s tick, low rate", 2 * MiB, 2 * time.Second, false, 100 * time.Second},
		{"status with settings", 10 * MiB, time.Second, true, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock(monday0759)
			dev := newSimDevice(clk, 128, bigVolume, wavyBW(clk.Now(), 60e6))
			r := NewRegulator(RegulatorOptions{Controller: Options{Interval: tc.tick}})
			pts := regulate(t, r, "vol1", clk, dev, tc.target, tc.tick, 300*time.Second, tc.withSettings)
			target := float64(tc.target)
			assert.InDelta(t, target, avgRate(pts, 30*time.Second, 300*time.Second), 0.1*target)
			assert.LessOrEqual(t, maxWindowRate(pts, 10*time.Second, tc.peakWindow), 1.3*target)
			snap, ok := r.Snapshot("vol1")
			require.True(t, ok)
			assert.Equal(t, tc.target, snap.Target)
		})
	}
}

func TestRegulatorSharesBudget(t *testing.T) {
	clk := newFakeClock(monday0759)
	a := newSimDevice(clk, 128, 300<<20, constBW(60e6)) // finishes first
	b := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	r := NewRegulator(RegulatorOptions{Budget: NewBudget(20 * MiB)})
	var ptsA, ptsB []point
	for i := 0; i < 120; i++ {
		for _, x := range []struct {
			name string
			dev  *simDevice
			pts  *[]point
		}{{"a", a, &ptsA}, {"b", b, &ptsB}} {
			*x.pts = append(*x.pts, point{clk.Now(), x.dev.bytesAt()})
			p, err := x.dev.Progress(context.Background())
			require.NoError(t, err)
			if p.Complete() {
				r.Forget(x.name)
				continue
			}
			sendTo(t, x.dev, r.Regulate(x.name, p, clk.Now(), Unlimited))
		}
		clk.Advance(time.Second)
	}
	// Both share 20 MiB/s while a runs (300 MiB at 10 MiB/s: 30 s)...
	assert.InDelta(t, float64(10*MiB), avgRate(ptsA, 5*time.Second, 25*time.Second), 0.15*float64(10*MiB))
	assert.InDelta(t, float64(10*MiB), avgRate(ptsB, 5*time.Second, 25*time.Second), 0.15*float64(10*MiB))
	// ...then b gets all of it.
	assert.InDelta(t, float64(20*MiB), avgRate(ptsB, 45*time.Second, 119*time.Second), 0.1*float64(20*MiB))
}
