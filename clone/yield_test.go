package clone

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/lunferry/lunferry/dm"
)

// yieldHost is a host doing reqPerSec requests whose latency rises with
// the hydration rate: base at rest, base*(1+slowdown) at the device's full
// speed devMax.
type yieldHost struct {
	base      time.Duration
	slowdown  float64
	reqPerSec uint64
	devMax    float64

	io       dm.IOCounters
	hydrated uint64
}

// second runs one second at hydration rate r and returns the host's
// average latency in it.
func (h *yieldHost) second(r Rate) time.Duration {
	got := min(float64(r), h.devMax)
	if r == Unlimited {
		got = h.devMax
	}
	lat := time.Duration(float64(h.base) * (1 + h.slowdown*got/h.devMax))
	h.io.Requests += h.reqPerSec
	h.io.Busy += lat * time.Duration(h.reqPerSec)
	h.hydrated += uint64(got)
	return lat
}

// runYield drives y for secs one-second samples under ceiling and returns
// the rates it chose and the host latency of each second.
func runYield(y *Yield, h *yieldHost, secs int, ceiling Rate) (rates []Rate, lats []time.Duration) {
	at := monday0759
	r := y.Rate(h.io, h.hydrated, at, ceiling)
	for range secs {
		lats = append(lats, h.second(r))
		at = at.Add(time.Second)
		r = y.Rate(h.io, h.hydrated, at, ceiling)
		rates = append(rates, r)
	}
	return rates, lats
}

func meanRate(rs []Rate) float64 {
	var s float64
	for _, r := range rs {
		s += float64(r)
	}
	return s / float64(len(rs))
}

func TestYieldKeepsABusyHostNearItsBaseline(t *testing.T) {
	// Full-speed hydration triples the host's latency (5 ms -> 15 ms);
	// factor 1.5 allows 1.5*(5+0.5) = 8.25 ms: about 30% of full speed.
	h := &yieldHost{base: 5 * time.Millisecond, slowdown: 2, reqPerSec: 500, devMax: 200e6}
	y := NewYield(1.5)
	rates, lats := runYield(y, h, 600, Unlimited)
	assert.Equal(t, 5*time.Millisecond, y.baseline, "baseline measured with hydration held")
	var over int
	for _, l := range lats[60:] {
		if l > 9*time.Millisecond {
			over++
		}
	}
	avg := meanRate(rates[60:])
	t.Logf("mean rate %.1f MiB/s (device %.0f MiB/s), seconds above the limit %d of %d", avg/float64(MiB), h.devMax/float64(MiB), over, len(lats)-60)
	assert.Less(t, over, len(lats[60:])/4, "the host spends most seconds under its limit")
	assert.Greater(t, avg, 0.1*h.devMax, "hydration still makes progress")
	assert.Less(t, avg, 0.45*h.devMax, "hydration yields")
}

func TestYieldRunsToTheCeilingOnAnIdleHost(t *testing.T) {
	h := &yieldHost{base: 2 * time.Millisecond, slowdown: 3, reqPerSec: 0, devMax: 500e6}
	rates, _ := runYield(NewYield(0), h, 60, 100*MiB)
	assert.Equal(t, Paused, rates[0], "held while the baseline is measured")
	assert.Equal(t, 100*MiB, rates[len(rates)-1])
}

func TestYieldGrowsNoFasterThanTheDevice(t *testing.T) {
	// Idle host, slow device: the rate stays within twice what the
	// device achieves, so a busy host later is answered in a few halvings.
	h := &yieldHost{base: 2 * time.Millisecond, slowdown: 3, reqPerSec: 0, devMax: 20e6}
	rates, _ := runYield(NewYield(0), h, 120, Unlimited)
	assert.LessOrEqual(t, float64(rates[len(rates)-1]), 2*h.devMax*1.01)
}

func TestYieldMeasuresTheBaselineWhenTheHostWakesUp(t *testing.T) {
	h := &yieldHost{base: 4 * time.Millisecond, slowdown: 4, reqPerSec: 0, devMax: 100e6}
	y := NewYield(0)
	rates, _ := runYield(y, h, 30, Unlimited)
	assert.Zero(t, y.baseline, "an idle host has no baseline")
	h.reqPerSec = 300
	r, at := rates[len(rates)-1], monday0759.Add(31*time.Second)
	rates = nil
	for range 4 {
		h.second(r)
		r = y.Rate(h.io, h.hydrated, at, Unlimited)
		rates = append(rates, r)
		at = at.Add(time.Second)
	}
	assert.Equal(t, []Rate{Paused, Paused}, rates[:2], "held to measure the busy host's idle latency")
	assert.Equal(t, 4*time.Millisecond, y.baseline)
	assert.NotEqual(t, Paused, rates[2])
}

func TestYieldHonoursThePausedCeilingAndReprobes(t *testing.T) {
	h := &yieldHost{base: 3 * time.Millisecond, slowdown: 1, reqPerSec: 100, devMax: 100e6}
	y := NewYield(0)
	at := monday0759
	assert.Equal(t, Paused, y.Rate(h.io, h.hydrated, at, Paused))
	rates, _ := runYield(y, h, int(yieldReprobe/time.Second)+5, 50*MiB)
	var held int
	for _, r := range rates[10:] {
		if r == Paused {
			held++
		}
	}
	assert.Equal(t, yieldProbe, held, "one probe after yieldReprobe")
}

func TestYieldRestartsOnACounterReset(t *testing.T) {
	h := &yieldHost{base: 3 * time.Millisecond, slowdown: 1, reqPerSec: 100, devMax: 100e6}
	y := NewYield(0)
	runYield(y, h, 10, Unlimited)
	assert.Equal(t, Paused, y.Rate(dm.IOCounters{}, 0, monday0759.Add(11*time.Second), Unlimited), "a rebuilt device starts with a probe")
}

func TestYieldIgnoresSamplesBetweenRounds(t *testing.T) {
	// Samples 50 ms apart (a burst being ended) carry a handful of host
	// requests: they must not count as an idle host and raise the rate.
	h := &yieldHost{base: 5 * time.Millisecond, slowdown: 2, reqPerSec: 500, devMax: 200e6}
	y := NewYield(0)
	rates, _ := runYield(y, h, 30, Unlimited)
	r, at := rates[len(rates)-1], monday0759.Add(30*time.Second)
	for range 10 {
		at = at.Add(50 * time.Millisecond)
		h.io.Requests += 5
		h.io.Busy += 5 * h.base
		h.hydrated += uint64(float64(r) / 20)
		assert.Equal(t, r, y.Rate(h.io, h.hydrated, at, Unlimited))
	}
}
