package clone

import (
	"time"

	"github.com/lunferry/lunferry/dm"
)

// Fixed tuning of the adaptive yield.
const (
	// DefaultYieldFactor is how far above its idle baseline the host's
	// average I/O latency may rise before hydration backs off.
	DefaultYieldFactor = 1.5
	// yieldFloor is the rate hydration keeps however busy the host is,
	// so a migration under a constantly busy host still ends.
	yieldFloor = 1 * MiB
	// yieldStart is the first rate after the baseline is measured.
	yieldStart = 16 * MiB
	// yieldMinRequests is how many host requests an interval needs for
	// its latency to mean something; fewer is an idle host.
	yieldMinRequests = 20
	// yieldSlack is added to the baseline before the factor applies: a
	// baseline of 100 µs must not make 160 µs a reason to back off.
	yieldSlack = 500 * time.Microsecond
	// yieldProbe is how many samples hydration is held for to measure
	// the baseline (the first interval lets copies in flight finish, the
	// second is measured), and
	// yieldReprobe how often that is done again, so the baseline follows
	// the host's workload.
	yieldProbe   = 2
	yieldReprobe = 10 * time.Minute
	// yieldInterval is the shortest span a sample covers: the control
	// loop also samples between its rounds to end bursts (every 10-100
	// ms), and so few requests would look like an idle host.
	yieldInterval = 900 * time.Millisecond
)

// Yield adapts a volume's hydration rate to its host: it holds hydration
// briefly to measure the host's idle latency (its baseline), then halves
// the rate whenever the host's average latency over a sample rises above
// factor times the baseline, and raises it by a quarter after each calm
// sample, between yieldFloor and the ceiling (the throttle's own rate).
// It decides a rate only; a Controller keeps the device at it. A Yield is
// not safe for concurrent use.
type Yield struct {
	factor float64

	decided  Rate // the last rate returned
	rate     Rate // current adaptive rate; 0 until the baseline is known
	baseline time.Duration
	probing  int       // samples left in the current probe
	probedAt time.Time // when the last probe ended

	last       dm.IOCounters
	lastAt     time.Time
	lastBytes  uint64
	hydrating  float64 // recent hydration rate, bytes/s
	haveSample bool
}

// NewYield returns a Yield that backs off at factor times the baseline
// (DefaultYieldFactor when factor <= 1).
func NewYield(factor float64) *Yield {
	return &Yield{factor: yieldFactor(factor), probing: yieldProbe}
}

// yieldFactor is factor, or DefaultYieldFactor when it is not above 1.
func yieldFactor(factor float64) float64 {
	if factor <= 1 {
		return DefaultYieldFactor
	}
	return factor
}

// Rate takes a sample of the host's I/O (the counters of the device the
// export serves: the host's requests only, not the clone's copying below
// it) and of the volume's hydrated bytes at time at, and returns the rate to hydrate at now, at most
// ceiling (Paused while the baseline is measured).
func (y *Yield) Rate(io dm.IOCounters, hydrated uint64, at time.Time, ceiling Rate) Rate {
	if y.haveSample && at.After(y.lastAt) && at.Sub(y.lastAt) < yieldInterval &&
		io.Requests >= y.last.Requests && hydrated >= y.lastBytes {
		// Too soon to say anything of the host: the last decision holds.
		return min(y.decided, ceiling)
	}
	y.decided = y.decide(io, hydrated, at, ceiling)
	return y.decided
}

// decide is Rate on a sample that covers a long enough span.
func (y *Yield) decide(io dm.IOCounters, hydrated uint64, at time.Time, ceiling Rate) Rate {
	latency, active, ok := y.observe(io, hydrated, at)
	switch {
	case ceiling == Paused:
		return Paused
	case !ok:
		if y.probing > 0 || y.rate == 0 {
			return Paused
		}
		return min(y.rate, ceiling)
	case y.probing > 0:
		if y.probing--; y.probing > 0 {
			return Paused
		}
		y.endProbe(latency, active, at)
	case active && y.baseline == 0:
		// The host was idle at every probe so far: measure its baseline
		// now that it is busy.
		y.probing = yieldProbe
		return Paused
	case active && latency > y.limit():
		y.rate = max(yieldFloor, y.rate/2)
	default:
		y.rate = y.grow()
	}
	if at.Sub(y.probedAt) >= yieldReprobe {
		y.probing = yieldProbe
		return Paused
	}
	return min(y.rate, ceiling)
}

// observe records the sample and returns the host's average latency since
// the previous one and whether the host was active; ok is false on the
// first sample, a counter reset (a rebuilt device) or a repeated time.
func (y *Yield) observe(io dm.IOCounters, hydrated uint64, at time.Time) (latency time.Duration, active, ok bool) {
	prev, prevAt, prevBytes, had := y.last, y.lastAt, y.lastBytes, y.haveSample
	y.last, y.lastAt, y.lastBytes, y.haveSample = io, at, hydrated, true
	if !had || io.Requests < prev.Requests || io.Busy < prev.Busy || hydrated < prevBytes {
		// First sample, or a rebuilt device: (re)start the probe.
		y.probing = yieldProbe
		return 0, false, false
	}
	if !at.After(prevAt) {
		return 0, false, false
	}
	if dt := at.Sub(prevAt).Seconds(); dt > 0 {
		r := float64(hydrated-prevBytes) / dt
		y.hydrating = 0.5*y.hydrating + 0.5*r
	}
	n := io.Requests - prev.Requests
	if n < yieldMinRequests {
		return 0, false, true
	}
	return (io.Busy - prev.Busy) / time.Duration(n), true, true
}

// endProbe takes the latency seen with hydration held as the baseline (an
// idle host keeps the one it had) and starts, or resumes, the rate.
func (y *Yield) endProbe(latency time.Duration, active bool, at time.Time) {
	y.probedAt = at
	if active {
		y.baseline = latency
	}
	if y.rate == 0 {
		y.rate = yieldStart
	}
}

// limit is the latency above which hydration backs off.
func (y *Yield) limit() time.Duration {
	return time.Duration(float64(y.baseline+yieldSlack) * y.factor)
}

// grow is the rate after a calm sample: a quarter more, but no more than
// twice what hydration achieved lately (a device slower than the rate
// would otherwise let it climb to where halving takes many samples).
func (y *Yield) grow() Rate {
	r := Rate(float64(y.rate) * 1.25)
	if c := Rate(2 * y.hydrating); y.hydrating > 0 && r > c {
		r = max(c, y.rate)
	}
	return max(yieldFloor, r)
}
