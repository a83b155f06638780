package clone

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// dm-clone target messages (Documentation/admin-guide/device-mapper/
// dm-clone.rst, "Messages"), as the Regulator returns them.
const (
	// MsgEnableHydration starts background hydration.
	MsgEnableHydration = "enable_hydration"
	// MsgDisableHydration stops starting new copies (those in flight
	// complete).
	MsgDisableHydration = "disable_hydration"
)

// MsgThreshold renders "hydration_threshold N".
func MsgThreshold(regions uint) string { return fmt.Sprintf("hydration_threshold %d", regions) }

// MsgBatchSize renders "hydration_batch_size N".
func MsgBatchSize(regions uint) string { return fmt.Sprintf("hydration_batch_size %d", regions) }

// Regulator runs one Controller per volume for a caller that owns the
// polling loop and the device (the plan's Tick): at each tick it is given
// the status the caller read and the rate the volume's throttle allows,
// and returns the dm-clone messages to send. It is the same control logic
// as Controller.Run, including its early wake-ups, provided the caller
// honours them: after each Regulate, Wake says when the volume's
// controller wants its next sample (the end of a burst of hydration, often
// 10-100 ms away, or of a throttle pause), and the caller reads the status
// and calls Regulate again then, between its ticks. A caller that only
// ticks lets every burst run until its next tick: on a device much faster
// than the target, that is the device's full speed for a whole tick.
// A Regulator is safe for concurrent use.
type Regulator struct {
	opts RegulatorOptions

	mu      sync.Mutex
	volumes map[string]*regulated
}

// RegulatorOptions configure a Regulator.
type RegulatorOptions struct {
	// Budget, when set, splits its total among the regulated volumes.
	Budget *Budget
	// Controller is the template for each volume's controller; Clock,
	// Schedule, Share, Paused and OnProgress are set by the Regulator.
	// Set Interval to the caller's tick period.
	Controller Options
}

// regulated is one volume under a Regulator.
type regulated struct {
	c     *Controller
	dev   *recorder
	clock *manualClock
	share *Share
	// wake is when the controller wants its next sample (zero: never,
	// the volume is hydrated).
	wake time.Time
}

// NewRegulator returns an empty Regulator.
func NewRegulator(opts RegulatorOptions) *Regulator {
	return &Regulator{opts: opts, volumes: map[string]*regulated{}}
}

// Regulate takes the status p of volume read at time at, and target, the
// rate its throttle allows now (Unlimited = none), and returns the messages
// to send to the device, in order. If p does not carry the device's
// settings (Threshold and BatchSize both 0), the Regulator relies on the
// messages it returned before, and sends every setting on a volume's first
// call. Samples of one volume must come in time order.
func (r *Regulator) Regulate(volume string, p Progress, at time.Time, target Rate) []string {
	r.mu.Lock()
	v, ok := r.volumes[volume]
	if !ok {
		v = &regulated{dev: &recorder{}, clock: &manualClock{}}
		o := r.opts.Controller
		o.Clock, o.Paused, o.OnProgress, o.Share = v.clock, false, nil, nil
		if r.opts.Budget != nil {
			v.share = r.opts.Budget.Join(volume)
			o.Share = v.share
		}
		v.c = NewController(v.dev, o)
		v.c.forceApply = true
		r.volumes[volume] = v
	}
	r.mu.Unlock()

	v.clock.set(at)
	v.dev.load(p)
	v.c.SetSchedule(Fixed(target))
	// The recorder cannot fail, so neither can the step.
	next, _ := v.c.Step(context.Background())
	var wake time.Time
	if next > 0 {
		wake = at.Add(next)
	}
	r.mu.Lock()
	v.wake = wake
	r.mu.Unlock()
	return v.dev.take()
}

// Wake returns when volume's controller wants its next sample, as decided
// by the last Regulate: the end of a burst of hydration or of a throttle
// pause, at most the controller's Interval after that call. ok is false
// when the volume is not regulated (never seen, forgotten) or hydrated.
// Read the status and call Regulate at that time even between ticks; a
// later call works too, but lets a burst meant to last 10 ms run on.
func (r *Regulator) Wake(volume string) (at time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.volumes[volume]
	if !ok || v.wake.IsZero() {
		return time.Time{}, false
	}
	return v.wake, true
}

// Snapshot returns the last snapshot of volume (rate, ETA, target,
// threshold), if it is regulated.
func (r *Regulator) Snapshot(volume string) (Snapshot, bool) {
	r.mu.Lock()
	v, ok := r.volumes[volume]
	r.mu.Unlock()
	if !ok {
		return Snapshot{}, false
	}
	return v.c.Snapshot(), true
}

// Forget drops a volume's history (paused, finished, aborted) and its
// budget share. The next Regulate starts afresh and resends every setting.
func (r *Regulator) Forget(volume string) {
	r.mu.Lock()
	v, ok := r.volumes[volume]
	delete(r.volumes, volume)
	r.mu.Unlock()
	if ok && v.share != nil {
		v.share.Leave()
	}
}

// recorder is a Device that replays a status given from outside and
// records the messages the controller sends instead of sending them.
type recorder struct {
	mu        sync.Mutex
	p         Progress
	enabled   bool
	threshold uint
	batch     uint
	msgs      []string
}

// load sets the status the next Progress returns. Settings it does not
// carry are taken from what was sent before.
func (d *recorder) load(p Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.Threshold != 0 || p.BatchSize != 0 {
		d.enabled, d.threshold, d.batch = p.HydrationEnabled, p.Threshold, p.BatchSize
	}
	d.p = p
}

// take returns and clears the recorded messages.
func (d *recorder) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.msgs
	d.msgs = nil
	return m
}

func (d *recorder) Progress(context.Context) (Progress, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.p
	p.HydrationEnabled, p.Threshold, p.BatchSize = d.enabled, d.threshold, d.batch
	return p, nil
}

func (d *recorder) SetHydration(_ context.Context, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.enabled = on
	if on {
		d.msgs = append(d.msgs, MsgEnableHydration)
	} else {
		d.msgs = append(d.msgs, MsgDisableHydration)
	}
	return nil
}

func (d *recorder) SetThreshold(_ context.Context, n uint) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.threshold = n
	d.msgs = append(d.msgs, MsgThreshold(n))
	return nil
}

func (d *recorder) SetBatchSize(_ context.Context, n uint) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.batch = n
	d.msgs = append(d.msgs, MsgBatchSize(n))
	return nil
}

// manualClock is a Clock set from outside; After fires at once (the
// Regulator never waits on it).
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (m *manualClock) set(t time.Time) {
	m.mu.Lock()
	m.t = t
	m.mu.Unlock()
}

func (m *manualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

func (m *manualClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- m.Now()
	return ch
}
