package clone

import (
	"testing"
	"time"

	"github.com/lunferry/lunferry/dm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusOf reads dev's status for a Regulator; without settings it carries
// progress only (no threshold, batch size or hydration flag), so the
// Regulator must rely on the messages it returned before.
func statusOf(dev *simDevice, withSettings bool) dm.CloneStatus {
	st := dev.status()
	if !withSettings {
		st.Features = []string{dm.CloneFeatureNoHydration}
		st.HydrationThreshold, st.HydrationBatchSize = 0, 0
	}
	return st
}

// regulate runs a fixed-tick loop that ignores Wake against dev for d.
func regulate(t *testing.T, r *Regulator, name string, clk *fakeClock, dev *simDevice, target Rate, tick, d time.Duration, withSettings bool) []point {
	t.Helper()
	end := clk.Now().Add(d)
	pts := []point{{clk.Now(), dev.bytesAt()}}
	for clk.Now().Before(end) {
		dev.send(t, r.Regulate(name, statusOf(dev, withSettings), clk.Now(), target))
		clk.Advance(tick)
		pts = append(pts, point{clk.Now(), dev.bytesAt()})
	}
	return pts
}

func TestRegulatorFirstCallSendsEverySetting(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	r := NewRegulator(RegulatorOptions{})
	p := statusOf(dev, false)
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
	_, ok := r.Wake("vol1")
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
			st := x.dev.status()
			if st.Hydrated() {
				r.Forget(x.name)
				continue
			}
			x.dev.send(t, r.Regulate(x.name, st, clk.Now(), Unlimited))
		}
		clk.Advance(time.Second)
	}
	// Both share 20 MiB/s while a runs (300 MiB at 10 MiB/s: 30 s)...
	assert.InDelta(t, float64(10*MiB), avgRate(ptsA, 5*time.Second, 25*time.Second), 0.15*float64(10*MiB))
	assert.InDelta(t, float64(10*MiB), avgRate(ptsB, 5*time.Second, 25*time.Second), 0.15*float64(10*MiB))
	// ...then b gets all of it.
	assert.InDelta(t, float64(20*MiB), avgRate(ptsB, 45*time.Second, 119*time.Second), 0.1*float64(20*MiB))
}

// regulateLikePlan drives r the way plan.Run does: a round every tick plus
// a light step (status, Regulate, messages) whenever the volume's
// controller asked to wake before the next tick, each late by late (the
// lock, the status ioctl and the messages take time on a real proxy).
func regulateLikePlan(t *testing.T, r *Regulator, name string, clk *fakeClock, dev *simDevice, target Rate, tick, late, d time.Duration, withSettings bool) []point {
	t.Helper()
	end := clk.Now().Add(d)
	nextTick := clk.Now()
	pts := []point{{clk.Now(), dev.bytesAt()}}
	for clk.Now().Before(end) {
		dev.send(t, r.Regulate(name, statusOf(dev, withSettings), clk.Now(), target))
		for !nextTick.After(clk.Now()) {
			nextTick = nextTick.Add(tick)
		}
		at := nextTick
		if w, ok := r.Wake(name); ok && w.Add(late).Before(at) {
			require.True(t, w.After(clk.Now()), "Wake must lie in the future")
			at = w.Add(late)
		}
		clk.Advance(at.Sub(clk.Now()))
		pts = append(pts, point{clk.Now(), dev.bytesAt()})
	}
	return pts
}

// TestRegulatorHoldsTargetWithWakeUps is the plan's control loop (1 s
// ticks plus the early wake-ups the Regulator asks for) against devices
// many times faster than the target: every 10 s window, the first one
// included, stays within 20% of the target. Without the wake-ups the first
// tick alone runs at the device's speed for a whole second.
func TestRegulatorHoldsTargetWithWakeUps(t *testing.T) {
	for _, tc := range []struct {
		name         string
		target       Rate
		bw           func(time.Time) float64
		late         time.Duration
		withSettings bool
		tick         time.Duration // 0: 1 s, as `lunferry run` by default
	}{
		// One region in flight copies ~15 MiB/s: 8x the target, as
		// over iSCSI in the lab (TestKernelHydrationOverISCSI).
		{"8x faster, one region in flight", 2 * MiB, constBW(float64(30 * MiB)), 2 * time.Millisecond, false, 0},
		{"8x faster, status with settings", 2 * MiB, constBW(float64(30 * MiB)), 2 * time.Millisecond, true, 0},
		{"8x faster, late wake-ups", 2 * MiB, constBW(float64(30 * MiB)), 20 * time.Millisecond, false, 0},
		{"8x faster, wavy", 2 * MiB, wavyBW(monday0759, float64(30*MiB)), 5 * time.Millisecond, false, 0},
		// An admin's 50MiB/s on a 400 MiB/s array: several regions in
		// flight, duty-cycled.
		{"50MiB/s on a fast array", 50 * MiB, constBW(float64(400 * MiB)), 5 * time.Millisecond, true, 0},
		{"8MiB/s on a fast array", 8 * MiB, constBW(float64(64 * MiB)), 5 * time.Millisecond, false, 0},
		// Longer rounds (Run's own default is 2 s): the wake-ups, not the
		// rounds, end the bursts.
		{"8x faster, 2 s rounds", 2 * MiB, constBW(float64(30 * MiB)), 5 * time.Millisecond, true, 2 * time.Second},
		{"8x faster, 10 s rounds", 2 * MiB, constBW(float64(30 * MiB)), 5 * time.Millisecond, true, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock(monday0759)
			dev := newSimDevice(clk, 128, bigVolume, tc.bw)
			tick := tc.tick
			if tick == 0 {
				tick = time.Second
			}
			r := NewRegulator(RegulatorOptions{Controller: Options{Interval: tick}})
			pts := regulateLikePlan(t, r, "vol1", clk, dev, tc.target, tick, tc.late, 60*time.Second, tc.withSettings)
			target := float64(tc.target)
			first := avgRate(pts, 0, 10*time.Second)
			hi := maxWindowRate(pts, 0, 10*time.Second)
			lo := minWindowRate(pts, 0, 10*time.Second)
			t.Logf("target %.1f MiB/s: first 10 s %.2f MiB/s, 10 s windows %.2f-%.2f MiB/s, %d steps in 60 s",
				target/float64(MiB), first/float64(MiB), lo/float64(MiB), hi/float64(MiB), len(pts)-1)
			assert.InDelta(t, target, first, 0.2*target, "first 10 s")
			assert.LessOrEqual(t, hi, 1.2*target, "fastest 10 s window")
			assert.GreaterOrEqual(t, lo, 0.8*target, "slowest 10 s window")
			assert.InDelta(t, target, avgRate(pts, 0, 60*time.Second), 0.1*target, "whole minute")
		})
	}
	t.Run("ticks only, for contrast", func(t *testing.T) {
		// The same loop ignoring Wake: the first probe (one region in
		// flight) runs for a whole tick at 8x the target.
		clk := newFakeClock(monday0759)
		dev := newSimDevice(clk, 128, bigVolume, constBW(float64(30*MiB)))
		r := NewRegulator(RegulatorOptions{Controller: Options{Interval: time.Second}})
		pts := regulate(t, r, "vol1", clk, dev, 2*MiB, time.Second, 60*time.Second, false)
		hi := maxWindowRate(pts, 0, 10*time.Second)
		t.Logf("ticks only: fastest 10 s window %.2f MiB/s", hi/float64(MiB))
		assert.Greater(t, hi, 1.5*float64(2*MiB))
	})
}

func TestRegulatorWake(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, 64<<20, constBW(float64(30*MiB)))
	r := NewRegulator(RegulatorOptions{Controller: Options{Interval: time.Second}})
	_, ok := r.Wake("vol1")
	assert.False(t, ok, "unknown volume")
	p := dev.status()
	msgs := r.Regulate("vol1", p, clk.Now(), 2*MiB)
	// The first decision for a throttled volume is a short probe with one
	// region in flight, and a wake-up to end it.
	assert.Equal(t, []string{"hydration_batch_size 1", "hydration_threshold 1", "enable_hydration"}, msgs)
	at, ok := r.Wake("vol1")
	require.True(t, ok)
	assert.Equal(t, 10*time.Millisecond, at.Sub(clk.Now()))
	// Unlimited: nothing to end early, the next tick will do.
	r.Forget("vol1")
	_, ok = r.Wake("vol1")
	assert.False(t, ok, "forgotten")
	r.Regulate("vol1", p, clk.Now(), Unlimited)
	at, ok = r.Wake("vol1")
	require.True(t, ok)
	assert.Equal(t, time.Second, at.Sub(clk.Now()))
	// Hydrated: no wake-up.
	p.HydratedRegions = p.TotalRegions
	clk.Advance(time.Second)
	r.Regulate("vol1", p, clk.Now(), 2*MiB)
	_, ok = r.Wake("vol1")
	assert.False(t, ok, "hydrated")
}

// TestRegulatorBudgetWithWakeUps: two volumes on devices far faster than
// their shares, under a 4 MiB/s budget, driven like plan.Run (rounds for
// all, light steps for the volumes whose wake-up is due): each holds its
// share, and the survivor takes the whole budget once the other is done.
func TestRegulatorBudgetWithWakeUps(t *testing.T) {
	clk := newFakeClock(monday0759)
	devs := map[string]*simDevice{
		"a": newSimDevice(clk, 128, 40<<20, constBW(float64(30*MiB))), // done after ~20 s
		"b": newSimDevice(clk, 128, bigVolume, constBW(float64(30*MiB))),
	}
	names := []string{"a", "b"}
	pts := map[string][]point{}
	r := NewRegulator(RegulatorOptions{Budget: NewBudget(4 * MiB), Controller: Options{Interval: time.Second}})
	step := func(name string) {
		dev := devs[name]
		st := dev.status()
		if st.Hydrated() {
			r.Forget(name)
			return
		}
		dev.send(t, r.Regulate(name, st, clk.Now(), Unlimited))
	}
	end := clk.Now().Add(60 * time.Second)
	nextTick := clk.Now()
	for clk.Now().Before(end) {
		if !clk.Now().Before(nextTick) {
			for _, n := range names {
				step(n)
			}
			nextTick = nextTick.Add(time.Second)
		} else {
			for _, n := range names {
				if w, ok := r.Wake(n); ok && !w.After(clk.Now()) {
					step(n)
				}
			}
		}
		at := nextTick
		for _, n := range names {
			if w, ok := r.Wake(n); ok && w.Before(at) {
				at = w
			}
		}
		clk.Advance(at.Sub(clk.Now()))
		for _, n := range names {
			pts[n] = append(pts[n], point{clk.Now(), devs[n].bytesAt()})
		}
	}
	share := float64(2 * MiB)
	assert.InDelta(t, share, avgRate(pts["a"], 0, 10*time.Second), 0.2*share, "a, first 10 s")
	assert.InDelta(t, share, avgRate(pts["b"], 0, 10*time.Second), 0.2*share, "b, first 10 s")
	assert.LessOrEqual(t, maxWindowRate(pts["a"], 0, 10*time.Second), 1.2*share, "a")
	var doneAt time.Duration
	for _, pt := range pts["a"] {
		if pt.bytes >= 40<<20 {
			doneAt = pt.t.Sub(monday0759)
			break
		}
	}
	t.Logf("a hydrated 40 MiB in %v", doneAt.Round(time.Millisecond))
	assert.InDelta(t, 20, doneAt.Seconds(), 3, "a at its share of the budget")
	full := float64(4 * MiB)
	assert.InDelta(t, full, avgRate(pts["b"], 30*time.Second, 60*time.Second), 0.15*full, "b alone")
	assert.LessOrEqual(t, maxWindowRate(pts["b"], 0, 10*time.Second), 1.2*full, "b")
}

// TestRegulatorPauseResume pauses a volume the way plan.Pause does (Forget,
// then disable_hydration) and resumes it (Regulate again): nothing moves
// while paused, and the pause saves up no allowance for a burst.
func TestRegulatorPauseResume(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(50e6))
	r := NewRegulator(RegulatorOptions{})
	regulateLikePlan(t, r, "vol1", clk, dev, 10*MiB, time.Second, 0, 20*time.Second, true)

	r.Forget("vol1")
	dev.send(t, []string{dm.MsgDisableHydration})
	assert.False(t, dev.enabled)
	before := dev.bytesAt()
	clk.Advance(30 * time.Second)
	assert.Equal(t, before, dev.bytesAt(), "no progress while paused")
	_, ok := r.Wake("vol1")
	assert.False(t, ok, "a paused volume wants no samples")

	pts := regulateLikePlan(t, r, "vol1", clk, dev, 10*MiB, time.Second, 0, 60*time.Second, true)
	assert.InDelta(t, float64(10*MiB), avgRate(pts, 10*time.Second, 60*time.Second), 0.1*float64(10*MiB))
	assert.LessOrEqual(t, maxWindowRate(pts, 0, 5*time.Second), 1.2*float64(10*MiB), "a pause must not save up allowance for a burst")
}

// TestRegulatorThrottleOfZeroHoldsHydration: a rate of 0 ("mon-fri
// 08:00-18:00=0") disables hydration and keeps it off, whether the device
// was hydrating under this Regulator or left hydrating before it started;
// unlimited afterwards hydrates at full speed.
func TestRegulatorThrottleOfZeroHoldsHydration(t *testing.T) {
	for _, tc := range []struct {
		name         string
		warmUp       bool // hydrate unlimited under the Regulator first
		withSettings bool
	}{
		{"after hydrating under the regulator", true, true},
		{"after hydrating, status without settings", true, false},
		{"device left hydrating before the regulator started", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock(monday0759)
			dev := newSimDevice(clk, 128, bigVolume, constBW(float64(400*MiB)))
			r := NewRegulator(RegulatorOptions{Controller: Options{Interval: time.Second}})
			if tc.warmUp {
				regulateLikePlan(t, r, "vol1", clk, dev, Unlimited, time.Second, 0, 5*time.Second, tc.withSettings)
			} else {
				dev.enabled, dev.threshold, dev.batch = true, TunedThreshold, TunedBatchSize
			}
			require.True(t, dev.enabled, "hydrating")

			sent := len(dev.messages)
			pts := regulateLikePlan(t, r, "vol1", clk, dev, Paused, time.Second, 0, 60*time.Second, tc.withSettings)
			held := dev.messages[sent:]
			assert.Contains(t, held, dm.MsgDisableHydration)
			assert.NotContains(t, held, dm.MsgEnableHydration, "a throttle of 0 never enables hydration")
			assert.False(t, dev.enabled)
			// The copies in flight at disable_hydration finish; nothing after.
			assert.Equal(t, pts[1].bytes, pts[len(pts)-1].bytes, "no progress while the throttle is 0")
			w, ok := r.Wake("vol1")
			require.True(t, ok, "a held volume is still sampled, to keep hydration off")
			assert.LessOrEqual(t, w.Sub(clk.Now()), time.Second)

			sent = len(dev.messages)
			pts = regulateLikePlan(t, r, "vol1", clk, dev, Unlimited, time.Second, 0, 10*time.Second, tc.withSettings)
			assert.Contains(t, dev.messages[sent:], dm.MsgEnableHydration)
			assert.Greater(t, avgRate(pts, 0, 10*time.Second), float64(100*MiB), "unlimited hydrates again")
		})
	}
}

// TestRegulatorPausedVolumeLeavesBudgetToOthers: under a budget, a volume
// whose throttle is 0 takes no share; the other gets the whole total.
func TestRegulatorPausedVolumeLeavesBudgetToOthers(t *testing.T) {
	clk := newFakeClock(monday0759)
	r := NewRegulator(RegulatorOptions{Budget: NewBudget(20 * MiB)})
	devA := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	devB := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	var ptsB []point
	step := func(name string, dev *simDevice, target Rate) {
		if w, ok := r.Wake(name); !ok || !clk.Now().Before(w) {
			dev.send(t, r.Regulate(name, dev.status(), clk.Now(), target))
		}
	}
	end := clk.Now().Add(120 * time.Second)
	for clk.Now().Before(end) {
		step("a", devA, Paused)
		step("b", devB, Unlimited)
		ptsB = append(ptsB, point{clk.Now(), devB.bytesAt()})
		clk.Advance(10 * time.Millisecond)
	}
	assert.Zero(t, devA.bytesAt(), "a is held from its first sample")
	rb := avgRate(ptsB, 20*time.Second, 120*time.Second)
	assert.InDelta(t, float64(20*MiB), rb, 0.1*float64(20*MiB), "b gets the whole budget: %.1f MiB/s", rb/float64(MiB))
}
