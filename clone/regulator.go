package clone

import (
	"sync"
	"time"

	"github.com/lunferry/lunferry/dm"
)

// Regulator keeps the hydration of several volumes at their throttles: one
// Controller per volume, optionally under a Budget shared by them all. The
// caller owns the polling loop and the devices (lunferry's is plan.Run): it
// reads a volume's status, calls Regulate with the rate the volume's
// throttle allows now, sends the returned messages, and samples again when
// Wake says, even between its own rounds. Bursts of hydration last 10-100
// ms on a device far faster than the target; a caller that only samples on
// its rounds lets every burst run at the device's full speed until the
// next round. A Regulator is safe for concurrent use.
type Regulator struct {
	opts RegulatorOptions

	mu      sync.Mutex
	volumes map[string]*regulated
}

// RegulatorOptions configure a Regulator.
type RegulatorOptions struct {
	// Budget, when set, splits its total among the regulated volumes:
	// each runs at the lower of its own rate and its share.
	Budget *Budget
	// Controller configures each volume's Controller; set Interval to
	// the caller's polling period.
	Controller Options
}

// regulated is one volume under a Regulator.
type regulated struct {
	c     *Controller
	share *share // nil without a Budget
	// wake is when the controller wants its next sample (zero: never,
	// the volume is hydrated).
	wake time.Time
	// yield adapts the rate to the host, for a throttle with the
	// adaptive clause; nil until asked.
	yield *Yield
}

// NewRegulator returns a Regulator with no volumes.
func NewRegulator(opts RegulatorOptions) *Regulator {
	return &Regulator{opts: opts, volumes: map[string]*regulated{}}
}

// Regulate takes the status st of volume read at time at, and target, the
// rate its throttle allows now (Paused: hydration held, its budget share
// going to the others; Unlimited: none), and returns the
// dm-clone messages to send to the device, in order (see
// Controller.Decide). A volume's first call sends every setting. Samples
// of one volume must come in time order.
func (r *Regulator) Regulate(volume string, st dm.CloneStatus, at time.Time, target Rate) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.volume(volume)
	own := target
	if v.share != nil {
		target = min(target, v.share.allowance())
	}
	d := v.c.Decide(st, at, target)
	v.wake = d.Next
	switch {
	case v.share == nil:
	case d.Next.IsZero():
		// Hydrated: its part goes to the others.
		v.share.set(false, 0)
	default:
		// Its own rate, or no more than its device can take.
		v.share.set(true, min(own, d.Limit))
	}
	return d.Messages
}

// volume returns volume's record, made on first use. r.mu is held.
func (r *Regulator) volume(name string) *regulated {
	v, ok := r.volumes[name]
	if !ok {
		v = &regulated{c: NewController(r.opts.Controller)}
		if r.opts.Budget != nil {
			v.share = r.opts.Budget.join()
		}
		r.volumes[name] = v
	}
	return v
}

// Yield returns the rate at which volume's hydration yields to its host
// (a throttle with the adaptive clause, factor its Adaptive): at most
// ceiling, lower while the host's I/O latency is above factor times its
// idle baseline (see Yield). io are the counters of the device the host
// is served from, hydrated the volume's hydrated bytes, both read at at.
// Pass the result to Regulate as its target.
func (r *Regulator) Yield(volume string, io dm.IOCounters, hydrated uint64, at time.Time, ceiling Rate, factor float64) Rate {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.volume(volume)
	if v.yield == nil || v.yield.factor != yieldFactor(factor) {
		v.yield = NewYield(factor)
	}
	return v.yield.Rate(io, hydrated, at, ceiling)
}

// Wake returns when volume's Controller wants its next sample, as decided
// by the last Regulate (Decision.Next). ok is false when the volume is not
// regulated (never seen, forgotten) or hydrated.
func (r *Regulator) Wake(volume string) (at time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.volumes[volume]
	if !ok || v.wake.IsZero() {
		return time.Time{}, false
	}
	return v.wake, true
}

// Forget drops a volume's history (paused, finished, aborted) and its
// budget share. The next Regulate starts afresh and resends every setting.
func (r *Regulator) Forget(volume string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.volumes[volume]; ok && v.share != nil {
		v.share.leave()
	}
	delete(r.volumes, volume)
}
