package clone

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/lunferry/lunferry/dm"
)

// Tuned hydration settings, used as they are when the throttle is Unlimited
// and as the ceiling of the controller when it is not.
//
// Measured in the lab (shared/lab/NOTES.md, 2026-11-25, Debian 6.1 under
// qemu TCG): hydrating 256 MiB took 77 s (3.3 MB/s) with the kernel's
// defaults (region 8 sectors, hydration_threshold 1, hydration_batch_size
// 1) and 5-8 s (34-48 MB/s) with region 128 sectors, threshold 64 and batch
// 16, i.e. more than 10x faster. The kernel default (threshold 1) must
// therefore never be left in place.
//
// Most of that gap is the region size; the clone kernel test
// (TestKernelUnlimitedUsesTunedSettings, 32 MiB over loop devices, same
// lab) separates the two: with 4 KiB regions these settings (threshold
// 1024, batch 256, see below) hydrated 3.6-10x faster than threshold 1 /
// batch 1 (25-68 vs 6.5-17 MiB/s); with 64 KiB regions 0.6-1.7x (noise
// of a shared 2-core host: 14-63 vs 17-60 MiB/s). Over iSCSI, which is
// what a migration copies between (TestKernelHydrationOverISCSI: two LIO
// LUNs on loopback, 16-32 MiB, 64 KiB regions), they were 5.5-10.4x
// faster over four runs: 9.3-28.7 vs 0.9-4.5 MiB/s.
//
// The measured point is 64 regions of 64 KiB = 4 MiB in flight, copied in
// 16 x 64 KiB = 1 MiB kcopyd requests. For other region sizes the
// controller keeps those byte amounts (TunedFor), not the region counts.
const (
	// RecommendedRegionSize is the region size (sectors) of the
	// measurement above; 64 KiB regions keep the metadata small and the
	// copy efficient.
	RecommendedRegionSize = 128
	// TunedThreshold is hydration_threshold at RecommendedRegionSize.
	TunedThreshold uint = 64
	// TunedBatchSize is hydration_batch_size at RecommendedRegionSize.
	TunedBatchSize uint = 16
	// TunedInFlightBytes is the copy volume in flight at full speed.
	TunedInFlightBytes = uint64(TunedThreshold) * RecommendedRegionSize * SectorSize
	// TunedCopyBytes is the size of one kcopyd request at full speed.
	TunedCopyBytes = uint64(TunedBatchSize) * RecommendedRegionSize * SectorSize
)

// TunedFor returns the full-speed threshold and batch size for a region
// size in sectors: the measured TunedInFlightBytes and TunedCopyBytes
// expressed in regions (at least 1).
func TunedFor(regionSectors uint64) (threshold, batch uint) {
	if regionSectors == 0 {
		return TunedThreshold, TunedBatchSize
	}
	rb := regionSectors * SectorSize
	threshold, batch = uint(TunedInFlightBytes/rb), uint(TunedCopyBytes/rb)
	if threshold < 1 {
		threshold = 1
	}
	if batch < 1 {
		batch = 1
	}
	return threshold, batch
}

// Options configure a Controller. The zero value is usable: unlimited
// rate, system clock, one-second polling.
type Options struct {
	// Schedule is the throttle (use Fixed for a single rate).
	Schedule Schedule
	// Share, when set, caps the rate at this volume's part of a Budget
	// shared by all volumes on the proxy.
	Share *Share
	// Paused starts the controller paused (hydration kept disabled until
	// Resume), e.g. when restoring a volume the admin had paused.
	Paused bool
	// Clock defaults to SystemClock.
	Clock Clock
	// Interval is the polling period (default 1 s, which is also
	// dm-clone's metadata commit period).
	Interval time.Duration
	// MinInterval is the shortest wait after a step that turned hydration
	// off or left it on at the target (default 100 ms); the controller
	// wakes early to end a throttle pause.
	MinInterval time.Duration
	// MinOnTime is the shortest burst of hydration (default 10 ms). On a
	// device much faster than the target even one region in flight
	// overshoots, so the controller turns hydration on for bursts this
	// short and keeps it off in between.
	MinOnTime time.Duration
	// RateWindow is the span of the moving average behind Snapshot.Rate
	// and ETA (default 30 s).
	RateWindow time.Duration
	// Burst is how many seconds of the target rate may be saved up while
	// the device is slower than the target and spent later (default 2 s).
	// It bounds how far above the target any interval can run.
	Burst time.Duration
	// MaxThreshold and BatchSize override TunedFor (0 = tuned).
	MaxThreshold, BatchSize uint
	// StallAfter marks the snapshot Stalled when hydration is wanted but
	// no region completed for this long (default 60 s).
	StallAfter time.Duration
	// MaxErrors is how many consecutive device errors Run tolerates
	// (retrying every Interval) before it returns the last one
	// (default 3).
	MaxErrors int
	// OnProgress, when set, receives a Snapshot after every step, from
	// the goroutine running Step or Run. It must not call Step.
	OnProgress func(Snapshot)
}

// Snapshot is the controller's view after a step, for status output and
// for the plan to persist.
type Snapshot struct {
	Time time.Time `json:"time"`
	Progress
	// Fraction is HydratedRegions/TotalRegions in [0, 1].
	Fraction float64 `json:"fraction"`
	// HydratedBytes and TotalBytes are the region counts in bytes.
	HydratedBytes uint64 `json:"hydrated_bytes"`
	// TotalBytes is TotalRegions times the region size.
	TotalBytes uint64 `json:"total_bytes"`
	// Rate is the moving average of the hydration rate over RateWindow.
	Rate Rate `json:"rate"`
	// ETA is the expected time to completion at Rate; 0 when unknown
	// (no progress measured yet, paused, stalled) or done.
	ETA time.Duration `json:"eta_ns"`
	// Target is the rate the controller aims at now (Unlimited = none):
	// the schedule's rate, capped by the budget share.
	Target Rate `json:"target"`
	// Paused is true between Pause and Resume.
	Paused bool `json:"paused"`
	// Done is true once every region is hydrated.
	Done bool `json:"done"`
	// Stalled is true when hydration is wanted but nothing completed for
	// StallAfter: check the source and destination paths.
	Stalled bool `json:"stalled"`
}

// Controller drives the hydration of one dm-clone device. Its methods are
// safe for concurrent use.
type Controller struct {
	dev  Device
	opts Options

	wake chan struct{} // nudges Run after Pause, Resume, SetSchedule
	done chan struct{} // closed when hydration completes

	mu       sync.Mutex
	schedule Schedule
	paused   bool
	finished bool

	maxThreshold, batchSize uint    // resolved once the region size is known
	regionBytes             float64 // region size in bytes

	started  bool
	last     sample   // previous observation
	samples  []sample // for the moving average
	lastMove time.Time

	// What the controller asked for during the interval that ends now.
	wasEnabled   bool
	wasThreshold uint
	wasTarget    Rate
	wasPaused    bool

	tokens    float64       // bytes the throttle still allows (negative: debt)
	perSlot   float64       // estimated bytes/s per region of threshold; 0 = unknown
	probe     time.Duration // on-time of the current probe while perSlot is unknown
	probeFrom uint64        // hydrated regions when the probe started

	snap Snapshot

	// forceApply makes the next apply send every setting, for callers
	// that cannot read the device's current settings (Regulator).
	forceApply bool
}

// sample is one progress observation.
type sample struct {
	t        time.Time
	hydrated uint64
}

// NewController returns a controller for dev. It does not touch the device
// until the first Step (or Run).
func NewController(dev Device, opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = 100 * time.Millisecond
	}
	if opts.MinInterval > opts.Interval {
		opts.MinInterval = opts.Interval
	}
	if opts.MinOnTime <= 0 {
		opts.MinOnTime = 10 * time.Millisecond
	}
	if opts.MinOnTime > opts.MinInterval {
		opts.MinOnTime = opts.MinInterval
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = 30 * time.Second
	}
	if opts.Burst <= 0 {
		opts.Burst = 2 * time.Second
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = time.Minute
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = 3
	}
	return &Controller{
		dev:      dev,
		opts:     opts,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		schedule: opts.Schedule,
		paused:   opts.Paused,
	}
}

// Done is closed once the device is fully hydrated (the completion event).
func (c *Controller) Done() <-chan struct{} { return c.done }

// Snapshot returns the state after the last step.
func (c *Controller) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snap
}

// SetSchedule changes the throttle; a running Run applies it at once.
func (c *Controller) SetSchedule(s Schedule) {
	c.mu.Lock()
	c.schedule = s
	c.mu.Unlock()
	c.nudge()
}

// Schedule returns the current throttle.
func (c *Controller) Schedule() Schedule {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.schedule
}

// Pause disables hydration now and keeps it disabled until Resume. Copies
// already in flight (at most one threshold's worth) still complete.
func (c *Controller) Pause(ctx context.Context) error {
	c.mu.Lock()
	c.paused = true
	err := c.dev.SetHydration(ctx, false)
	if err == nil {
		c.wasEnabled, c.wasPaused = false, true
		c.snap.Paused = true
		c.snap.HydrationEnabled = false
	}
	c.mu.Unlock()
	c.nudge()
	if err != nil {
		return fmt.Errorf("clone: pause hydration: %w", err)
	}
	return nil
}

// Resume ends a Pause and runs a step, so hydration restarts under the
// throttle even when no Run loop is active.
func (c *Controller) Resume(ctx context.Context) error {
	c.mu.Lock()
	c.paused = false
	c.mu.Unlock()
	if _, err := c.Step(ctx); err != nil {
		return fmt.Errorf("clone: resume hydration: %w", err)
	}
	c.nudge()
	return nil
}

// nudge wakes Run without blocking.
func (c *Controller) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run steps the controller until the device is fully hydrated (it returns
// nil and Done is closed), ctx ends (it returns ctx.Err()), or the device
// fails MaxErrors times in a row (it returns the last error). It returns at
// once, without retrying, when the device stopped being a clone
// (ErrNotClone), its metadata failed (ErrMetadataFailed) or it is gone
// (dm.ErrNotFound).
func (c *Controller) Run(ctx context.Context) error {
	failures := 0
	for {
		next, err := c.Step(ctx)
		switch {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrNotClone), errors.Is(err, ErrMetadataFailed), errors.Is(err, dm.ErrNotFound):
			// Retrying cannot help: the device was swapped, failed or
			// removed.
			return err
		default:
			failures++
			if failures >= c.opts.MaxErrors {
				return err
			}
			next = c.opts.Interval
		}
		select {
		case <-c.done:
			return nil
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.wake:
		case <-c.opts.Clock.After(next):
		}
	}
}

// Step polls the device once, updates rate and ETA, adjusts hydration to
// the throttle and returns how long to wait before the next step.
func (c *Controller) Step(ctx context.Context) (time.Duration, error) {
	snap, next, err := c.step(ctx)
	if err != nil {
		return next, err
	}
	if c.opts.OnProgress != nil {
		c.opts.OnProgress(snap)
	}
	return next, nil
}

// step is Step under the lock, without the callback.
func (c *Controller) step(ctx context.Context) (Snapshot, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Clock.Now()
	p, err := c.dev.Progress(ctx)
	if err != nil {
		return c.snap, c.opts.Interval, fmt.Errorf("clone: read hydration progress: %w", err)
	}
	if !c.started {
		c.maxThreshold, c.batchSize = TunedFor(p.RegionSize)
		c.regionBytes = float64(p.RegionBytes())
		if c.opts.MaxThreshold > 0 {
			c.maxThreshold = c.opts.MaxThreshold
		}
		if c.opts.BatchSize > 0 {
			c.batchSize = c.opts.BatchSize
		}
	}
	c.observe(now, p)

	target := c.schedule.RateAt(now)
	if c.opts.Share != nil {
		target = minRate(target, c.opts.Share.Allowance())
	}

	if p.Complete() {
		c.complete()
		c.share(false, 0)
		c.snap = c.snapshot(now, p, target)
		return c.snap, 0, nil
	}

	enable, threshold, next := c.decide(target, p)
	batch := c.batchSize
	if batch > threshold {
		batch = threshold
	}
	if err := c.apply(ctx, p, enable, threshold, batch); err != nil {
		return c.snap, c.opts.Interval, err
	}
	c.wasEnabled, c.wasThreshold, c.wasTarget, c.wasPaused = enable, threshold, target, c.paused
	if enable {
		p.HydrationEnabled, p.Threshold, p.BatchSize = true, threshold, batch
	} else {
		p.HydrationEnabled = false
	}
	c.share(!c.paused, c.demand(target, threshold))
	c.snap = c.snapshot(now, p, target)
	return c.snap, next, nil
}

// observe accounts the progress made since the previous step: the token
// bucket, the per-slot speed estimate and the moving-average samples.
func (c *Controller) observe(now time.Time, p Progress) {
	rb := float64(p.RegionBytes())
	if !c.started || p.HydratedRegions < c.last.hydrated || !now.After(c.last.t) {
		if !c.started || p.HydratedRegions < c.last.hydrated {
			// First look, or the device was rebuilt with less progress:
			// start the accounting afresh.
			c.started = true
			c.samples = c.samples[:0]
			c.lastMove = now
			c.tokens = 0
		}
		c.last = sample{now, p.HydratedRegions}
		c.addSample(c.last)
		return
	}
	dt := now.Sub(c.last.t).Seconds()
	moved := float64(p.HydratedRegions-c.last.hydrated) * rb
	if p.HydratedRegions > c.last.hydrated || !c.wasEnabled {
		// Progress, or none wanted (paused, or off to hold the throttle):
		// either way not a stall.
		c.lastMove = now
	}

	// Token bucket: the target accrues, measured progress spends.
	switch {
	case c.wasTarget == Unlimited:
		c.tokens = 0
	case c.wasPaused:
		// A pause pays off debt but saves up no allowance.
		c.tokens = math.Min(c.tokens+float64(c.wasTarget)*dt-moved, 0)
	default:
		c.tokens += float64(c.wasTarget)*dt - moved
		if hi := c.burstBytes(c.wasTarget, rb); c.tokens > hi {
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
	if c.wasEnabled && c.wasThreshold > 0 && (moved > 0 || now.Sub(c.last.t) >= c.opts.Interval*9/10) {
		obs := moved / dt / float64(c.wasThreshold)
		if c.perSlot == 0 {
			c.perSlot = obs
		} else {
			c.perSlot = 0.6*c.perSlot + 0.4*obs
		}
	}

	c.last = sample{now, p.HydratedRegions}
	c.addSample(c.last)
}

// maxDebt bounds how long the controller keeps hydration off to make up
// for progress above the target.
const maxDebt = 5 * time.Minute

// burstBytes is the depth of the token bucket for target.
func (c *Controller) burstBytes(target Rate, regionBytes float64) float64 {
	b := float64(target) * c.opts.Burst.Seconds()
	if m := regionBytes * float64(c.batchSize); b < m {
		b = m
	}
	return b
}

// decide chooses hydration on/off, the threshold and the next wake-up.
func (c *Controller) decide(target Rate, p Progress) (enable bool, threshold uint, next time.Duration) {
	next = c.opts.Interval
	if c.paused {
		return false, c.currentThreshold(p), next
	}
	if target == Unlimited {
		return true, c.maxThreshold, next
	}
	// Concurrency that should run a little (25%) above the target, so the
	// on/off duty cycle trims the rest and the average sits on the target.
	if c.perSlot <= 0 {
		// Nothing measured yet: probe with one region in flight, for
		// MinOnTime first and twice as long each time nothing completes,
		// so a device far faster than the target cannot overshoot by
		// more than one short burst.
		if c.probe == 0 || c.last.hydrated > c.probeFrom {
			c.probe, c.probeFrom = c.opts.MinOnTime, c.last.hydrated
		} else {
			c.probe = clampDuration(2*c.probe, c.opts.MinOnTime, c.opts.Interval)
		}
		if c.tokens < 0 {
			wait := time.Duration(-c.tokens / float64(target) * float64(time.Second))
			return false, 1, clampDuration(wait, c.opts.MinInterval, c.opts.Interval)
		}
		return true, 1, c.probe
	}
	threshold = c.maxThreshold
	if want := math.Ceil(float64(target) * 1.25 / c.perSlot); want < float64(c.maxThreshold) {
		threshold = uint(want)
	}
	if threshold < 1 {
		threshold = 1
	}
	if c.tokens < 0 {
		// Ahead of the throttle: stay off until the debt is paid.
		wait := time.Duration(-c.tokens / float64(target) * float64(time.Second))
		return false, threshold, clampDuration(wait, c.opts.MinInterval, c.opts.Interval)
	}
	// On. If the expected speed exceeds the target, come back when the
	// saved-up allowance is spent.
	if est := c.perSlot * float64(threshold); est > float64(target) {
		wait := time.Duration(c.tokens / (est - float64(target)) * float64(time.Second))
		next = clampDuration(wait, c.opts.MinOnTime, c.opts.Interval)
	}
	return true, threshold, next
}

// currentThreshold keeps the device's threshold while paused.
func (c *Controller) currentThreshold(p Progress) uint {
	if p.Threshold > 0 {
		return p.Threshold
	}
	return 1
}

// apply sends the messages that make the device match the decision, and
// only those that change something.
func (c *Controller) apply(ctx context.Context, p Progress, enable bool, threshold, batch uint) error {
	if c.forceApply {
		// Unknown device settings: make every comparison below differ.
		p.HydrationEnabled, p.Threshold, p.BatchSize = !enable, threshold+1, batch+1
		c.forceApply = false
	}
	if !enable {
		if p.HydrationEnabled {
			if err := c.dev.SetHydration(ctx, false); err != nil {
				return fmt.Errorf("clone: disable hydration: %w", err)
			}
		}
		return nil
	}
	// Batch size and threshold first, so the copy restarts with them.
	if p.BatchSize != batch {
		if err := c.dev.SetBatchSize(ctx, batch); err != nil {
			return fmt.Errorf("clone: set hydration batch size %d: %w", batch, err)
		}
	}
	if p.Threshold != threshold {
		if err := c.dev.SetThreshold(ctx, threshold); err != nil {
			return fmt.Errorf("clone: set hydration threshold %d: %w", threshold, err)
		}
	}
	if !p.HydrationEnabled {
		if err := c.dev.SetHydration(ctx, true); err != nil {
			return fmt.Errorf("clone: enable hydration: %w", err)
		}
	}
	return nil
}

// demand is what this volume asks of the budget: its own cap, or, when the
// device cannot even use what it gets (full concurrency and the bucket
// full), a bit more than it achieves, so the rest goes to other volumes.
func (c *Controller) demand(target Rate, threshold uint) Rate {
	own := c.schedule.RateAt(c.opts.Clock.Now())
	if c.opts.Share == nil || target == Unlimited || c.perSlot <= 0 {
		return own
	}
	full := c.tokens >= 0.99*c.burstBytes(target, c.regionBytes)
	if threshold >= c.maxThreshold && full {
		achievable := Rate(c.perSlot * float64(threshold) * 1.25)
		if achievable < MiB {
			achievable = MiB
		}
		return minRate(own, achievable)
	}
	return own
}

// share reports this volume's demand to the budget, if any.
func (c *Controller) share(active bool, demand Rate) {
	if c.opts.Share != nil {
		c.opts.Share.Set(active, demand)
	}
}

// complete fires the completion event once.
func (c *Controller) complete() {
	if !c.finished {
		c.finished = true
		close(c.done)
	}
}

// addSample keeps the samples of the last RateWindow (and at least two).
func (c *Controller) addSample(s sample) {
	c.samples = append(c.samples, s)
	cut := 0
	for cut < len(c.samples)-2 && s.t.Sub(c.samples[cut+1].t) >= c.opts.RateWindow {
		cut++
	}
	if cut > 0 {
		c.samples = append(c.samples[:0], c.samples[cut:]...)
	}
}

// snapshot builds the Snapshot of the current state.
func (c *Controller) snapshot(now time.Time, p Progress, target Rate) Snapshot {
	s := Snapshot{
		Time:          now,
		Progress:      p,
		Fraction:      p.Fraction(),
		HydratedBytes: p.HydratedBytes(),
		TotalBytes:    p.TotalBytes(),
		Target:        target,
		Paused:        c.paused,
		Done:          p.Complete(),
	}
	if len(c.samples) >= 2 {
		a, b := c.samples[0], c.samples[len(c.samples)-1]
		if d := b.t.Sub(a.t).Seconds(); d > 0 && b.hydrated >= a.hydrated {
			s.Rate = Rate(float64(b.hydrated-a.hydrated) * float64(p.RegionBytes()) / d)
		}
	}
	if s.Done {
		return s
	}
	s.Stalled = !c.paused && now.Sub(c.lastMove) >= c.opts.StallAfter
	if s.Rate > 0 && !c.paused && !s.Stalled {
		left := float64(p.TotalBytes() - p.HydratedBytes())
		s.ETA = time.Duration(left / float64(s.Rate) * float64(time.Second)).Round(time.Second)
	}
	return s
}

// clampDuration bounds d to [lo, hi].
func clampDuration(d, lo, hi time.Duration) time.Duration {
	if d < lo {
		return lo
	}
	if d > hi {
		return hi
	}
	return d
}
