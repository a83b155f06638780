package clone

import (
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
			c := NewController(Options{})
			pts, _ := drive(t, c, Fixed(tc.target), clk, dev, 300*time.Second)

			target := float64(tc.target)
			avg := avgRate(pts, 20*time.Second, 300*time.Second)
			assert.InDelta(t, target, avg, 0.10*target, "average rate %.2f MiB/s, target %.2f MiB/s", avg/float64(MiB), target/float64(MiB))
			peak := maxWindowRate(pts, 5*time.Second, 10*time.Second)
			assert.LessOrEqual(t, peak, 1.3*target, "a 10 s window ran at %.2f MiB/s, target %.2f MiB/s", peak/float64(MiB), target/float64(MiB))
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
	pts, _ := drive(t, NewController(Options{}), Fixed(target), clk, dev, 120*time.Second)
	avg := avgRate(pts, 10*time.Second, 120*time.Second)
	assert.InDelta(t, float64(target), avg, 0.10*float64(target))
	// Each burst is minOnTime (10 ms) at 800 MB/s, about 8 MB, so the
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
	pts, _ := drive(t, NewController(Options{}), Fixed(target), clk, dev, 250*time.Second)
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
	pts, _ := drive(t, NewController(Options{}), Fixed(target), clk, dev, 300*time.Second)
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
	pts, _ := drive(t, NewController(Options{}), Fixed(100*MiB), clk, dev, 60*time.Second)
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
		c := NewController(Options{})
		d := c.Decide(dev.status(), clk.Now(), Unlimited)
		dev.send(t, d.Messages)
		assert.Equal(t, tc.threshold, dev.threshold, "region %d", tc.regionSectors)
		assert.Equal(t, tc.batch, dev.batch, "region %d", tc.regionSectors)
		assert.True(t, dev.enabled)
		// Set batch and threshold before enabling, each once.
		assert.Equal(t, "enable_hydration", dev.messages[len(dev.messages)-1])
		clk.Advance(time.Second)
		d = c.Decide(dev.status(), clk.Now(), Unlimited)
		assert.Empty(t, d.Messages, "no message when nothing changes")
		assert.Equal(t, clk.Now().Add(time.Second), d.Next, "unlimited: nothing to end early")
	}
}

func TestControllerCompletes(t *testing.T) {
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, 32<<20, constBW(50e6))
	target := 8 * MiB
	c := NewController(Options{})
	start := clk.Now()
	_, last := drive(t, c, Fixed(target), clk, dev, time.Minute)
	took := clk.Now().Sub(start)
	assert.InDelta(t, 4.0, took.Seconds(), 0.6, "32 MiB at 8 MiB/s took %v", took)
	assert.True(t, last.Next.IsZero(), "no further sample wanted")
	assert.Empty(t, last.Messages)
	assert.True(t, dev.status().Hydrated())
	assert.Equal(t, float64(32<<20), dev.bytesAt())
	// Another sample of a hydrated device changes nothing.
	clk.Advance(time.Second)
	assert.Equal(t, Decision{}, c.Decide(dev.status(), clk.Now(), target))
}

func TestControllerFollowsScheduleWindows(t *testing.T) {
	sch, err := ParseSchedule("mon-fri 08:00-08:03=5MiB/s; *=20MiB/s; tz=UTC")
	require.NoError(t, err)
	clk := newFakeClock(monday0759) // 07:59: default rate for a minute
	dev := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	c := NewController(Options{})
	pts, _ := drive(t, c, sch, clk, dev, 6*time.Minute)
	assert.InDelta(t, float64(20*MiB), avgRate(pts, 15*time.Second, 60*time.Second), 0.1*float64(20*MiB))
	assert.InDelta(t, float64(5*MiB), avgRate(pts, 70*time.Second, 240*time.Second), 0.1*float64(5*MiB))
	assert.InDelta(t, float64(20*MiB), avgRate(pts, 255*time.Second, 360*time.Second), 0.1*float64(20*MiB))

	// A new throttle applies on the next sample.
	pts, _ = drive(t, c, Fixed(2*MiB), clk, dev, 60*time.Second)
	assert.InDelta(t, float64(2*MiB), avgRate(pts, 10*time.Second, 60*time.Second), 0.1*float64(2*MiB))
}

func TestControllerLeavingUnlimited(t *testing.T) {
	// A night at full speed followed by a throttled day: no burst from
	// allowance saved during the night.
	sch, err := ParseSchedule("08:00-09:00=5MiB/s; *=unlimited; tz=UTC")
	require.NoError(t, err)
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	pts, _ := drive(t, NewController(Options{}), sch, clk, dev, 5*time.Minute)
	assert.InDelta(t, 60e6, avgRate(pts, 5*time.Second, 59*time.Second), 0.05*60e6)
	peak := maxWindowRate(pts, 61*time.Second, 10*time.Second)
	assert.LessOrEqual(t, peak, 1.3*float64(5*MiB))
}

func TestControllerDeviceRebuiltWithLessProgress(t *testing.T) {
	// After a crash the restored device may report fewer hydrated regions
	// than the last sample saw (metadata committed once per second): the
	// controller starts its accounting afresh instead of going negative.
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(50e6))
	c := NewController(Options{})
	drive(t, c, Fixed(10*MiB), clk, dev, 20*time.Second)
	dev.hydrated /= 2
	pts, _ := drive(t, c, Fixed(10*MiB), clk, dev, 60*time.Second)
	assert.InDelta(t, float64(10*MiB), avgRate(pts, 10*time.Second, 60*time.Second), 0.1*float64(10*MiB))
	assert.LessOrEqual(t, maxWindowRate(pts, 0, 10*time.Second), 1.3*float64(10*MiB))
}

func TestControllerHoldsTheThrottleAfterAHostBurst(t *testing.T) {
	// A host burst completes many regions at once (full-region writes):
	// the controller keeps hydration off for a long time to pay the debt.
	clk := newFakeClock(monday0759)
	dev := newSimDevice(clk, 128, bigVolume, constBW(50e6))
	c := NewController(Options{})
	drive(t, c, Fixed(1*MiB), clk, dev, 10*time.Second)
	dev.hydrated += float64(100 * MiB / (128 * 512)) // 100 MiB written by the host
	pts, _ := drive(t, c, Fixed(1*MiB), clk, dev, 90*time.Second)
	assert.Less(t, avgRate(pts, time.Second, 90*time.Second), float64(MiB)/10, "paying the debt: off")
}
