package clone

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const bigVolume = 1 << 40 // never finishes within a test

// wavyBW is a bandwidth of avg bytes/s that swings ±30% over a 40 s period.
func wavyBW(start time.Time, avg float64) func(time.Time) float64 {
	return func(t time.Time) float64 {
		return avg * (1 + 0.3*math.Sin(2*math.Pi*t.Sub(start).Seconds()/40))
	}
}

func TestControllerConvergesToTarget(t *testing.T) {
	cases := []struct {
		name          string
		target        Rate
		regionSectors uint64
		bw            float64
	}{
		{"duty cycle below one region in flight", 2 * MiB, 128, 60e6},
		{"mid range", 20 * MiB, 128, 60e6},
		{"close to the device's speed", 35 * MiB, 128, 60e6},
		{"small regions", 10 * MiB, 8, 60e6},
		{"large regions", 10 * MiB, 2048, 60e6},
		{"fast device", 200 * MiB, 128, 1.5e9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock(monday0759)
			dev := newSimDevice(clk, tc.regionSectors, bigVolume, wavyBW(clk.Now(), tc.bw))
			c := NewController(dev, Options{Schedule: Fixed(tc.target), Clock: clk})
			pts := drive(t, c, clk, dev, 300*time.Second)

			target := float64(tc.target)
			avg := avgRate(pts, 20*time.Second, 300*time.Second)
			assert.InDelta(t, target, avg, 0.10*target, "average rate %.2f MiB/s, target %.2f MiB/s", avg/float64(MiB), target/float64(MiB))
			peak := maxWindowRate(pts, 5*time.Second, 10*time.Second)
			assert.LessOrEqual(t, peak, 1.3*target, "a 10 s window ran at %.2f MiB/s, target %.2f MiB/s", peak/float64(MiB), target/float64(MiB))
			snap := c.Snapshot()
			assert.InDelta(t, target, float64(snap.Rate), 0.15*target, "moving average in the snapshot")
			assert.Positive(t, snap.ETA)
			assert.Equal(t, tc.target, snap.Target)
		})
	}
}

func TestControllerNeverRunsFarAboveTargetOnAFastDevice(t *testing.T) {
	// A device so fast that even one region in flight is 100x the target:
	// the controller has to duty-cycle with enable/disable.
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(2e9))
	dev.latency = 50 * time.Microsecond
	target := 1 * MiB
	c := NewController(dev, Options{Schedule: Fixed(target), Clock: clk})
	pts := drive(t, c, clk, dev, 120*time.Second)
	avg := avgRate(pts, 10*time.Second, 120*time.Second)
	assert.InDelta(t, float64(target), avg, 0.10*float64(target))
	// Each burst is MinOnTime (10 ms) at 800 MB/s, about 8 MB, so the
	// throttle only holds over spans of several bursts.
	peak := maxWindowRate(pts, 5*time.Second, 30*time.Second)
	assert.LessOrEqual(t, peak, 1.3*float64(target))
	assert.Contains(t, dev.messages, "disable_hydration", "duty cycling needs disable_hydration")
}

func TestControllerCopesWithAStalledDevice(t *testing.T) {
	clk := newFakeClock(monday0759)
	start := clk.Now()
	bw := func(t time.Time) float64 {
		if off := t.Sub(start); off >= 30*time.Second && off < 100*time.Second {
			return 0 // the source array stops answering for 70 s
		}
		return 50e6
	}
	dev := newSimDevice(clk, 128, bigVolume, bw)
	target := 10 * MiB
	var stalledSeen bool
	c := NewController(dev, Options{Schedule: Fixed(target), Clock: clk, StallAfter: 20 * time.Second,
		OnProgress: func(s Snapshot) {
			if s.Stalled {
				stalledSeen = true
				assert.Zero(t, s.ETA, "no ETA while stalled")
			}
		}})
	pts := drive(t, c, clk, dev, 250*time.Second)
	assert.True(t, stalledSeen, "the snapshot must say Stalled during the outage")
	assert.False(t, c.Snapshot().Stalled, "recovered")
	// After the outage: no burst to "catch up", then back on target.
	peak := maxWindowRate(pts, 100*time.Second, 10*time.Second)
	assert.LessOrEqual(t, peak, 1.3*float64(target), "burst after recovery: %.2f MiB/s", peak/float64(MiB))
	avg := avgRate(pts, 115*time.Second, 250*time.Second)
	assert.InDelta(t, float64(target), avg, 0.10*float64(target))
}

func TestControllerWithCompetingHostIO(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	start := clk.Now()
	// The host keeps hydration idle 60% of the time, in bursts.
	dev.hostBusy = func(t time.Time) float64 {
		if int(t.Sub(start).Seconds())%20 < 10 {
			return 0.8
		}
		return 0.4
	}
	target := 15 * MiB
	c := NewController(dev, Options{Schedule: Fixed(target), Clock: clk})
	pts := drive(t, c, clk, dev, 300*time.Second)
	avg := avgRate(pts, 20*time.Second, 300*time.Second)
	assert.InDelta(t, float64(target), avg, 0.10*float64(target))
	peak := maxWindowRate(pts, 5*time.Second, 10*time.Second)
	assert.LessOrEqual(t, peak, 1.3*float64(target))
}

func TestControllerTargetAboveDeviceSpeed(t *testing.T) {
	// The throttle cannot be reached: the controller must simply go as
	// fast as the tuned settings allow, not oscillate.
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(30e6))
	c := NewController(dev, Options{Schedule: Fixed(100 * MiB), Clock: clk})
	pts := drive(t, c, clk, dev, 60*time.Second)
	avg := avgRate(pts, 10*time.Second, 60*time.Second)
	assert.InDelta(t, 30e6, avg, 0.05*30e6)
	assert.Equal(t, TunedThreshold, dev.threshold)
}

func TestControllerUnlimitedUsesTunedSettings(t *testing.T) {
	for _, tc := range []struct {
		regionSectors    uint64
		threshold, batch uint
	}{
		{128, 64, 16},
		{8, 1024, 256},
		{2048, 4, 1},
		{2097152, 1, 1},
	} {
		clk := newFakeClock(monday0759)
		dev := newSimDevice(clk, tc.regionSectors, 64<<30, constBW(50e6))
		c := NewController(dev, Options{Clock: clk})
		_, err := c.Step(context.Background())
		require.NoError(t, err)
		assert.Equal(t, tc.threshold, dev.threshold, "region %d", tc.regionSectors)
		assert.Equal(t, tc.batch, dev.batch, "region %d", tc.regionSectors)
		assert.True(t, dev.enabled)
		// Set batch and threshold before enabling, each once.
		assert.Equal(t, "enable_hydration", dev.messages[len(dev.messages)-1])
		n := len(dev.messages)
		clk.Advance(time.Second)
		_, err = c.Step(context.Background())
		require.NoError(t, err)
		assert.Len(t, dev.messages, n, "no message when nothing changes: %v", dev.messages[n:])
	}
}

func TestControllerCompletes(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, 32<<20, constBW(50e6))
	var last Snapshot
	target := 8 * MiB
	c := NewController(dev, Options{Schedule: Fixed(target), Clock: clk, OnProgress: func(s Snapshot) { last = s }})
	start := clk.Now()
	require.NoError(t, c.Run(context.Background()))
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Run returned")
	}
	took := clk.Now().Sub(start)
	assert.InDelta(t, 4.0, took.Seconds(), 0.6, "32 MiB at 8 MiB/s took %v", took)
	assert.True(t, last.Done)
	assert.Equal(t, 1.0, last.Fraction)
	assert.Zero(t, last.ETA)
	assert.Equal(t, uint64(32<<20), last.HydratedBytes)
	// Run again on a finished device returns at once.
	require.NoError(t, c.Run(context.Background()))
}

func TestControllerPauseResume(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(50e6))
	c := NewController(dev, Options{Schedule: Fixed(10 * MiB), Clock: clk})
	drive(t, c, clk, dev, 20*time.Second)

	require.NoError(t, c.Pause(ctx))
	assert.False(t, dev.enabled)
	before := dev.bytesAt()
	drive(t, c, clk, dev, 30*time.Second)
	assert.Equal(t, before, dev.bytesAt(), "no progress while paused")
	snap := c.Snapshot()
	assert.True(t, snap.Paused)
	assert.Zero(t, snap.ETA)
	assert.False(t, snap.Stalled, "paused is not stalled")

	// Someone enables hydration behind our back: the next step undoes it.
	dev.enabled = true
	_, err := c.Step(ctx)
	require.NoError(t, err)
	assert.False(t, dev.enabled)

	require.NoError(t, c.Resume(ctx))
	assert.True(t, dev.enabled, "Resume enables hydration at once")
	pts := drive(t, c, clk, dev, 60*time.Second)
	assert.InDelta(t, float64(10*MiB), avgRate(pts, 10*time.Second, 60*time.Second), 0.1*float64(10*MiB))
	assert.LessOrEqual(t, maxWindowRate(pts, 0, 5*time.Second), 1.2*float64(10*MiB), "a pause must not save up allowance for a burst")
}

func TestControllerStartsPaused(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(50e6))
	dev.enabled = true
	c := NewController(dev, Options{Clock: clk, Paused: true})
	drive(t, c, clk, dev, 5*time.Second)
	assert.False(t, dev.enabled)
	assert.True(t, c.Snapshot().Paused)
}

func TestControllerFollowsScheduleWindows(t *testing.T) {
	sch, err := ParseSchedule("mon-fri 08:00-08:03=5MiB/s; *=20MiB/s; tz=UTC")
	require.NoError(t, err)
	clk := newFakeClock(monday0759) // 07:59: default rate for a minute
	dev := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	c := NewController(dev, Options{Schedule: sch, Clock: clk})
	pts := drive(t, c, clk, dev, 6*time.Minute)
	assert.InDelta(t, float64(20*MiB), avgRate(pts, 15*time.Second, 60*time.Second), 0.1*float64(20*MiB))
	assert.InDelta(t, float64(5*MiB), avgRate(pts, 70*time.Second, 240*time.Second), 0.1*float64(5*MiB))
	assert.InDelta(t, float64(20*MiB), avgRate(pts, 255*time.Second, 360*time.Second), 0.1*float64(20*MiB))

	// SetSchedule applies on the next step.
	c.SetSchedule(Fixed(2 * MiB))
	pts = drive(t, c, clk, dev, 60*time.Second)
	assert.InDelta(t, float64(2*MiB), avgRate(pts, 10*time.Second, 60*time.Second), 0.1*float64(2*MiB))
	assert.Equal(t, 2*MiB, c.Snapshot().Target)
}

func TestControllerLeavingUnlimited(t *testing.T) {
	// A night at full speed followed by a throttled day: no burst from
	// allowance saved during the night.
	sch, err := ParseSchedule("08:00-09:00=5MiB/s; *=unlimited; tz=UTC")
	require.NoError(t, err)
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	c := NewController(dev, Options{Schedule: sch, Clock: clk})
	pts := drive(t, c, clk, dev, 5*time.Minute)
	assert.InDelta(t, 60e6, avgRate(pts, 5*time.Second, 59*time.Second), 0.05*60e6)
	peak := maxWindowRate(pts, 61*time.Second, 10*time.Second)
	assert.LessOrEqual(t, peak, 1.3*float64(5*MiB))
}

func TestControllerRunErrors(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(50e6))
	c := NewController(dev, Options{Clock: clk, MaxErrors: 2})

	// A device that stopped being a clone ends Run at once.
	dev.failNext = errNotCloneForTest
	err := c.Run(context.Background())
	require.ErrorIs(t, err, ErrNotClone)

	// Transient errors are retried up to MaxErrors; a permanent one ends
	// Run at once.
	calls := 0
	c = NewController(&failingDevice{err: errors.New("EIO"), calls: &calls}, Options{Clock: clk, MaxErrors: 3})
	err = c.Run(context.Background())
	require.ErrorContains(t, err, "EIO")
	assert.Equal(t, 3, calls)
	calls = 0
	c = NewController(&failingDevice{err: fmt.Errorf("x: %w", ErrMetadataFailed), calls: &calls}, Options{Clock: clk, MaxErrors: 3})
	require.ErrorIs(t, c.Run(context.Background()), ErrMetadataFailed)
	assert.Equal(t, 1, calls)

	// Context cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, c.Run(ctx), context.Canceled)
}

var errNotCloneForTest = errors.Join(ErrNotClone)

// failingDevice fails every status read.
type failingDevice struct {
	err   error
	calls *int
}

func (f *failingDevice) Progress(context.Context) (Progress, error) {
	*f.calls++
	return Progress{}, f.err
}
func (f *failingDevice) SetHydration(context.Context, bool) error { return nil }
func (f *failingDevice) SetThreshold(context.Context, uint) error { return nil }
func (f *failingDevice) SetBatchSize(context.Context, uint) error { return nil }

func TestControllerDeviceRebuiltWithLessProgress(t *testing.T) {
	// After a crash the restored device may report fewer hydrated regions
	// than the last step saw (metadata committed once per second): the
	// controller starts its accounting afresh instead of going negative.
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(50e6))
	c := NewController(dev, Options{Schedule: Fixed(10 * MiB), Clock: clk})
	drive(t, c, clk, dev, 20*time.Second)
	dev.hydrated /= 2
	pts := drive(t, c, clk, dev, 60*time.Second)
	assert.InDelta(t, float64(10*MiB), avgRate(pts, 10*time.Second, 60*time.Second), 0.1*float64(10*MiB))
	assert.LessOrEqual(t, maxWindowRate(pts, 0, 10*time.Second), 1.3*float64(10*MiB))
}

func TestControllerNotStalledWhileHoldingTheThrottle(t *testing.T) {
	// A host burst completes many regions at once (full-region writes):
	// the controller keeps hydration off for a long time to pay the debt.
	// That is not a stall.
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(50e6))
	c := NewController(dev, Options{Schedule: Fixed(1 * MiB), Clock: clk, StallAfter: 20 * time.Second})
	drive(t, c, clk, dev, 10*time.Second)
	dev.hydrated += float64(100 * MiB / (128 * SectorSize)) // 100 MiB written by the host
	var stalled bool
	c.opts.OnProgress = func(s Snapshot) { stalled = stalled || s.Stalled }
	pts := drive(t, c, clk, dev, 90*time.Second)
	assert.False(t, stalled)
	assert.Less(t, avgRate(pts, time.Second, 90*time.Second), float64(MiB)/10, "paying the debt: off")
}
