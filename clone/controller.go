package clone

import (
	"math"
	"time"

	"github.com/lunferry/lunferry/dm"
)

// Options tune the Controller of each volume. The zero value is usable.
type Options struct {
	// Interval is the longest wait between two samples (default 1 s,
	// which is also dm-clone's metadata commit period). Set it to the
	// caller's polling period.
	Interval time.Duration
}

// Fixed tuning of the control loop.
const (
	// minInterval is the shortest wait after a decision that turned
	// hydration off or left it on at the target (at most Interval).
	minInterval = 100 * time.Millisecond
	// minOnTime is the shortest burst of hydration (at most minInterval).
	// On a device much faster than the target even one region in flight
	// overshoots, so hydration is turned on for bursts this short and
	// kept off in between.
	minOnTime = 10 * time.Millisecond
	// burst is how many seconds of the target may be saved up while the
	// device is slower than the target and spent later; it bounds how far
	// above the target any span of a few seconds can run.
	burst = 2 * time.Second
	// maxDebt bounds how long hydration is kept off to make up for
	// progress above the target.
	maxDebt = 5 * time.Minute
)

// Controller decides, from samples of one dm-clone device's status, which
// messages keep its hydration at a target rate. It holds the state of the
// control loop (token bucket, speed estimate, what the device runs with)
// but touches neither the device nor a clock: the caller reads the status,
// calls Decide, sends the messages and samples again at Decision.Next.
// A Controller is not safe for concurrent use; Regulator runs one per
// volume and is.
type Controller struct {
	interval, minInterval, minOnTime time.Duration

	started                 bool
	maxThreshold, batchSize uint    // TunedFor the region size
	regionBytes             float64 // region size in bytes

	last  sample   // previous sample
	dev   settings // what the device runs with, as far as known
	known bool     // false until the first decision: send every setting

	was settings // what was decided for the interval that ends now
	// wasTarget is the target of the interval that ends now.
	wasTarget Rate

	tokens    float64       // bytes the throttle still allows (negative: debt)
	perSlot   float64       // estimated bytes/s per region of threshold; 0 = unknown
	probe     time.Duration // on-time of the current probe while perSlot is unknown
	probeFrom uint64        // hydrated regions when the probe started
}

// sample is one progress observation.
type sample struct {
	t        time.Time
	hydrated uint64
}

// settings are the hydration settings of a device.
type settings struct {
	enabled          bool
	threshold, batch uint
}

// Decision is what the Controller wants done after a sample.
type Decision struct {
	// Messages are the dm-clone messages to send, in order
	// (dm.MsgHydrationBatchSize, dm.MsgHydrationThreshold,
	// dm.MsgEnableHydration, dm.MsgDisableHydration); none when the
	// device already runs as wanted.
	Messages []string
	// Next is when the Controller wants the next sample: the end of a
	// burst of hydration (often 10-100 ms away on a fast device) or of a
	// throttle pause, at most Interval away. A later sample works too but
	// lets a burst run on. Zero once every region is hydrated.
	Next time.Time
	// Limit is the rate the device seems unable to exceed, when it cannot
	// use its target (full concurrency and the token bucket full), so that
	// a Budget hands the rest to other volumes; Unlimited otherwise.
	Limit Rate
}

// NewController returns a Controller with no history.
func NewController(opts Options) *Controller {
	c := &Controller{interval: opts.Interval, minInterval: minInterval, minOnTime: minOnTime}
	if c.interval <= 0 {
		c.interval = time.Second
	}
	c.minInterval = min(c.minInterval, c.interval)
	c.minOnTime = min(c.minOnTime, c.minInterval)
	return c
}

// Decide takes the status st read at time at and the rate to aim at
// (Paused: hydration disabled and kept off; Unlimited: as fast as the
// tuned settings go) and returns what to do.
// Samples must come in time order. When st carries no settings
// (HydrationThreshold and HydrationBatchSize both 0) the Controller relies
// on the messages it returned before; its first decision sends every
// setting whatever st says. A faulty device (st.Faulty) cannot hydrate:
// the caller stops regulating it.
func (c *Controller) Decide(st dm.CloneStatus, at time.Time, target Rate) Decision {
	if !c.started {
		c.maxThreshold, c.batchSize = TunedFor(uint64(st.RegionSize))
		c.regionBytes = float64(st.RegionSize.Bytes())
	}
	if st.HydrationThreshold != 0 || st.HydrationBatchSize != 0 {
		c.dev = settings{st.HydrationEnabled(), st.HydrationThreshold, st.HydrationBatchSize}
	}
	c.observe(at, st.HydratedRegions, float64(st.RegionSize.Bytes()))
	if st.Hydrated() {
		return Decision{}
	}
	want, next := c.decide(target)
	want.batch = min(c.batchSize, want.threshold)
	d := Decision{Messages: c.messages(want), Next: at.Add(next), Limit: c.limit(target, want.threshold)}
	c.was, c.wasTarget = want, target
	return d
}

// observe accounts the progress made since the previous sample: the token
// bucket and the per-slot speed estimate.
func (c *Controller) observe(now time.Time, hydrated uint64, regionBytes float64) {
	if !c.started || hydrated < c.last.hydrated || !now.After(c.last.t) {
		if !c.started || hydrated < c.last.hydrated {
			// First look, or the device was rebuilt with less progress:
			// start the accounting afresh.
			c.started = true
			c.tokens = 0
		}
		c.last = sample{now, hydrated}
		return
	}
	dt := now.Sub(c.last.t).Seconds()
	moved := float64(hydrated-c.last.hydrated) * regionBytes

	// Token bucket: the target accrues, measured progress spends.
	if c.wasTarget == Unlimited {
		c.tokens = 0
	} else {
		c.tokens += float64(c.wasTarget)*dt - moved
		if hi := c.burstBytes(c.wasTarget, regionBytes); c.tokens > hi {
			c.tokens = hi
		}
		// Debt is kept (it is real overshoot) but bounded, so a jump
		// that was not ours (host writes completing regions) cannot
		// stall hydration for more than maxDebt.
		if lo := -float64(c.wasTarget) * maxDebt.Seconds(); c.tokens < lo {
			c.tokens = lo
		}
	}

	// Speed per region of threshold, learnt only from intervals that ran
	// enabled from start to end and long enough to mean something.
	// A short probe that saw nothing complete says nothing yet.
	if c.was.enabled && c.was.threshold > 0 && (moved > 0 || now.Sub(c.last.t) >= c.interval*9/10) {
		obs := moved / dt / float64(c.was.threshold)
		if c.perSlot == 0 {
			c.perSlot = obs
		} else {
			c.perSlot = 0.6*c.perSlot + 0.4*obs
		}
	}
	c.last = sample{now, hydrated}
}

// burstBytes is the depth of the token bucket for target.
func (c *Controller) burstBytes(target Rate, regionBytes float64) float64 {
	b := float64(target) * burst.Seconds()
	if m := regionBytes * float64(c.batchSize); b < m {
		b = m
	}
	return b
}

// decide chooses hydration on/off, the threshold and the wait until the
// next sample.
func (c *Controller) decide(target Rate) (want settings, next time.Duration) {
	switch target {
	case Paused:
		// Off until the throttle allows something; sampled each Interval
		// so hydration enabled behind our back is turned off again.
		return settings{}, c.interval
	case Unlimited:
		return settings{enabled: true, threshold: c.maxThreshold}, c.interval
	}
	if c.perSlot <= 0 {
		return c.probeStep(target)
	}
	// Concurrency that should run a little (25%) above the target, so the
	// on/off duty cycle trims the rest and the average sits on the target.
	want.threshold = c.maxThreshold
	if n := math.Ceil(float64(target) * 1.25 / c.perSlot); n < float64(c.maxThreshold) {
		want.threshold = max(uint(n), 1)
	}
	if c.tokens < 0 {
		// Ahead of the throttle: stay off until the debt is paid.
		return want, c.payBack(target)
	}
	// On. If the expected speed exceeds the target, come back when the
	// saved-up allowance is spent.
	want.enabled, next = true, c.interval
	if est := c.perSlot * float64(want.threshold); est > float64(target) {
		wait := time.Duration(c.tokens / (est - float64(target)) * float64(time.Second))
		next = clampDuration(wait, c.minOnTime, c.interval)
	}
	return want, next
}

// probeStep is decide while the speed is unknown: one region in flight,
// for minOnTime first and twice as long each time nothing completes, so a
// device far faster than the target cannot overshoot by more than one
// short burst.
func (c *Controller) probeStep(target Rate) (settings, time.Duration) {
	if c.probe == 0 || c.last.hydrated > c.probeFrom {
		c.probe, c.probeFrom = c.minOnTime, c.last.hydrated
	} else {
		c.probe = clampDuration(2*c.probe, c.minOnTime, c.interval)
	}
	if c.tokens < 0 {
		return settings{threshold: 1}, c.payBack(target)
	}
	return settings{enabled: true, threshold: 1}, c.probe
}

// payBack is how long hydration stays off to pay the debt in the bucket.
func (c *Controller) payBack(target Rate) time.Duration {
	wait := time.Duration(-c.tokens / float64(target) * float64(time.Second))
	return clampDuration(wait, c.minInterval, c.interval)
}

// messages returns the messages that make the device run with want, only
// those that change something (every one on the first decision), and
// records the settings they leave.
func (c *Controller) messages(want settings) []string {
	dev := c.dev
	if !c.known {
		// Unknown device settings: make every comparison below differ.
		dev, c.known = settings{!want.enabled, want.threshold + 1, want.batch + 1}, true
	}
	var msgs []string
	if !want.enabled {
		if dev.enabled {
			msgs = append(msgs, dm.MsgDisableHydration)
		}
		c.dev.enabled = false
		return msgs
	}
	// Batch size and threshold first, so the copy restarts with them.
	if dev.batch != want.batch {
		msgs = append(msgs, dm.MsgHydrationBatchSize(want.batch))
	}
	if dev.threshold != want.threshold {
		msgs = append(msgs, dm.MsgHydrationThreshold(want.threshold))
	}
	if !dev.enabled {
		msgs = append(msgs, dm.MsgEnableHydration)
	}
	c.dev = want
	return msgs
}

// limit is Decision.Limit: when the device cannot even use its target
// (full concurrency and the bucket full), a bit more than it achieves.
func (c *Controller) limit(target Rate, threshold uint) Rate {
	if target == Paused || target == Unlimited || c.perSlot <= 0 || threshold < c.maxThreshold {
		return Unlimited
	}
	if c.tokens < 0.99*c.burstBytes(target, c.regionBytes) {
		return Unlimited
	}
	return max(Rate(c.perSlot*float64(threshold)*1.25), MiB)
}

// clampDuration bounds d to [lo, hi].
func clampDuration(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}
