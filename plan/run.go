package plan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
)

// TickResult reports one control round for one volume.
type TickResult struct {
	// Volume is the volume's name.
	Volume string `json:"volume"`
	// Step is the volume's step after the round.
	Step Step `json:"step"`
	// Progress is the progress read in this round.
	Progress Progress `json:"progress"`
	// Messages are the dm messages sent.
	Messages []string `json:"messages,omitempty"`
	// Finalized is set when the round finalized the volume (auto
	// finalize).
	Finalized bool `json:"finalized,omitempty"`
	// Error is set when the round failed for this volume.
	Error string `json:"error,omitempty"`
}

// Tick runs one control round: for every hydrating, unpaused volume it reads
// the clone status, records progress, rate and ETA, marks the volume
// hydrated when complete (and finalizes it when autoFinalize is set), and
// lets the Regulator steer dm-clone toward the throttle's rate. It takes the
// lock without waiting: when another command holds it, the round is skipped
// (nil results, nil error).
func (p *Planner) Tick(ctx context.Context, autoFinalize bool) ([]TickResult, error) {
	res, _, err := p.tick(ctx, autoFinalize)
	return res, err
}

// tick is Tick; skipped reports a round skipped because the lock was held.
func (p *Planner) tick(ctx context.Context, autoFinalize bool) (res []TickResult, skipped bool, err error) {
	var finalize []string
	l, err := AcquireLock(ctx, p.o.StateDir, 0)
	if errors.Is(err, ErrLocked) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	func() {
		defer l.Release()
		var all []*Volume
		all, err = p.store.LoadAll()
		if err != nil {
			return
		}
		for _, v := range all {
			p.watchSessions(ctx, v)
			p.rehydrateIncomplete(ctx, v)
			if v.Step != StepHydrating || v.Paused {
				// Paused (perhaps by another lunferry) or done: the
				// controller's history and budget share go.
				p.forget(v.Spec.Name)
				if v.Step == StepHydrated && autoFinalize {
					finalize = append(finalize, v.Spec.Name)
				}
				continue
			}
			r := p.tickOne(ctx, v)
			if r.Step == StepHydrated && autoFinalize {
				finalize = append(finalize, v.Spec.Name)
			}
			res = append(res, r)
		}
	}()
	if err != nil {
		return nil, false, err
	}
	for _, name := range finalize {
		_, ferr := p.Finalize(ctx, name)
		found := false
		for i := range res {
			if res[i].Volume == name {
				found = true
				if ferr != nil {
					res[i].Error = ferr.Error()
				} else {
					res[i].Finalized, res[i].Step = true, StepFinalized
				}
			}
		}
		if !found {
			r := TickResult{Volume: name, Step: StepFinalized, Finalized: ferr == nil}
			if ferr != nil {
				r.Step, r.Error = StepHydrated, ferr.Error()
			}
			res = append(res, r)
		}
	}
	return res, false, nil
}

func (p *Planner) tickOne(ctx context.Context, v *Volume) TickResult {
	name := v.Spec.Name
	r := TickResult{Volume: name, Step: v.Step}
	st, err := p.o.Ports.Mapper.CloneStatus(ctx, DMName(name))
	if err != nil {
		r.Error = fmt.Sprintf("read clone status: %v (run `lunferry restore` if the proxy rebooted)", err)
		return r
	}
	now := p.o.Now()
	if st.Faulty() {
		v.FaultFrom, v.Step = v.Step, StepFaulty
		v.LastError = fmt.Sprintf("%v: dm-clone reports its metadata failed: abort the volume (`lunferry migrate abort %s`); the old LUN is intact", ErrFaulty, name)
		r.Step, r.Error = v.Step, v.LastError
		if err := p.save(v); err != nil {
			r.Error += fmt.Sprintf(" (saving that failed: %v)", err)
		}
		return r
	}
	if statusComplete(st) {
		// Recorded only from a committed status: one read without a
		// commit may show regions a power loss takes back.
		if st, err = p.o.Ports.Mapper.CommitStatus(ctx, DMName(name)); err != nil {
			r.Error = fmt.Sprintf("read clone status: %v", err)
			return r
		}
	}
	if st.HydratedRegions > v.Progress.HydratedRegions || v.ProgressAt.IsZero() || v.Spec.Throttle.RateAt(now) == clone.Paused {
		v.ProgressAt = now.UTC()
	}
	v.Progress = nextProgress(v.Progress, st, now)
	r.Progress = v.Progress
	if since, stalled := v.Stalled(now); stalled {
		p.scanStalled(ctx, v, since, now)
		r.Error = fmt.Sprintf("%v since %s: no region hydrated for %s: %s; finalize waits for it",
			ErrStalled, since.Format(time.RFC3339), now.Sub(since).Round(time.Second), stallCause(v, since))
	}
	if statusComplete(st) {
		v.Step, v.HydratedAt = StepHydrated, now.UTC()
		r.Step = v.Step
		p.forget(name)
		p.logf("volume %s: hydrated", name)
	} else if p.o.Ports.Regulator != nil {
		var me *messageError
		if r.Messages, me = p.regulate(ctx, v, st, now, false); me != nil {
			r.Error = fmt.Sprintf("message %q: %v", me.msg, me.err)
		}
	}
	if err := p.save(v); err != nil && r.Error == "" {
		r.Error = err.Error()
	}
	return r
}

// rehydrateIncomplete moves a volume recorded hydrated whose clone is not
// complete (hydration recorded before a power loss took back what was not
// committed, by a lunferry that did not commit first) back to hydrating,
// so that hydration finishes.
func (p *Planner) rehydrateIncomplete(ctx context.Context, v *Volume) {
	if v.Step != StepHydrated || v.Paused {
		return
	}
	st, err := p.o.Ports.Mapper.CloneStatus(ctx, DMName(v.Spec.Name))
	if err != nil || st.Faulty() || st.Hydrated() {
		return
	}
	p.logf("volume %s: recorded hydrated, but the clone has %d of %d regions: hydrating the rest", v.Spec.Name, st.HydratedRegions, st.TotalRegions)
	v.Step = StepHydrating
	if err := p.save(v); err != nil {
		p.logf("volume %s: %v", v.Spec.Name, err)
	}
}

// nextProgress folds a new status into the progress: the rate is an
// exponentially weighted average of the bytes hydrated between samples.
func nextProgress(prev Progress, st dm.CloneStatus, now time.Time) Progress {
	n := Progress{HydratedRegions: st.HydratedRegions, TotalRegions: st.TotalRegions, RegionSectors: uint64(st.RegionSize), At: now.UTC(), Rate: prev.Rate}
	if !prev.At.IsZero() && st.HydratedRegions >= prev.HydratedRegions {
		dt := now.Sub(prev.At).Seconds()
		if dt > 0 {
			inst := float64(st.HydratedRegions-prev.HydratedRegions) * float64(uint64(st.RegionSize)*512) / dt
			if prev.Rate == 0 {
				n.Rate = inst
			} else {
				n.Rate = 0.5*prev.Rate + 0.5*inst
			}
		}
	}
	if n.Rate > 0 && st.TotalRegions > st.HydratedRegions {
		left := float64(st.TotalRegions-st.HydratedRegions) * float64(uint64(st.RegionSize)*512)
		n.ETA = Duration(time.Duration(left / n.Rate * float64(time.Second)))
	}
	return n
}

// Run keeps the controller going until ctx ends: it restores the kernel
// objects first (after a reboot), then runs Tick every interval, reporting
// each round to report (which may be nil).
//
// Between rounds it gives the Regulator the early samples it asks for
// (Regulator.Wake): on a device many times faster than the throttle,
// hydration has to run in bursts of 10-100 ms, and a burst left on until
// the next round would copy at the device's full speed for a whole
// interval. Such a light step reads the clone status (without flushing),
// checks under the lock that the volume is still hydrating and not paused,
// and sends the Regulator's messages; it saves no state. While another
// command holds the lock, a due light step only disables hydration (see
// holdBursts) and is retried.
//
// Other commands change volumes meanwhile (`migrate start`, `migrate
// resume`, `migrate throttle`): the first decision of that process's
// Regulator, one region in flight, would run until the next round, as
// nothing there ends it early. Run therefore looks at the volumes
// directory's modification time every statePoll (every save renames a
// file into it) and starts a round as soon as it changed (and the lock is
// free), so such a burst lasts a few statePoll at most, and a new throttle
// applies as quickly.
func (p *Planner) Run(ctx context.Context, interval time.Duration, autoFinalize bool, report func([]TickResult)) error {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	p.inLoop = true
	defer func() { p.inLoop = false }()
	p.holdAtStart(ctx)
	retry := &restoreRetry{all: true}
	p.restoreDue(ctx, retry)
	t := time.NewTicker(interval)
	defer t.Stop()
	var hydrating []string
	for {
		if p.o.Heartbeat != nil {
			p.o.Heartbeat()
		}
		res, skipped, err := p.tick(ctx, autoFinalize)
		if err != nil {
			return err
		}
		// Read after the round's own saves; a skipped round leaves the
		// change it should have seen pending.
		var seen time.Time
		if !skipped {
			seen = p.stateStamp()
			// A skipped round keeps the volumes of the last one, so that
			// their bursts still end on time.
			hydrating = hydrating[:0]
			for _, r := range res {
				if r.Step == StepHydrating {
					hydrating = append(hydrating, r.Volume)
				}
			}
		}
		if report != nil && len(res) > 0 {
			report(res)
		}
		p.rebuildGone(ctx, retry)
		p.restoreDue(ctx, retry)
		p.betweenTicks(ctx, hydrating, t.C, seen)
		if ctx.Err() != nil {
			p.holdAtExit()
			return nil
		}
	}
}

// holdAtExit disables hydration on every hydrating, unpaused volume whose
// throttle limits it now: without this loop nobody keeps the throttle, and
// hydration left on would run at whatever setting the last step chose,
// perhaps a full-speed burst in office hours. Those volumes wait for the
// next `lunferry run`, which restores and re-enables them. Volumes without
// a limit keep hydrating at full speed, which is what their throttle says.
func (p *Planner) holdAtExit() {
	if p.o.DryRun || p.o.Ports.Regulator == nil {
		return
	}
	// The caller's context is done: give the messages a little time of
	// their own.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := p.store.LoadAll()
	if err != nil {
		p.logf("on exit: %v: hydration left as it is", err)
		return
	}
	now := p.o.Now()
	var names []string
	for _, v := range all {
		if v.Step == StepHydrating && !v.Paused && v.Spec.Throttle.RateAt(now) != clone.Unlimited {
			names = append(names, v.Spec.Name)
		}
	}
	if len(names) > 0 {
		p.logf("on exit: hydration held on throttled volumes %v until `lunferry run` starts again", names)
	}
	p.holdBursts(ctx, names)
}

// holdAtStart disables hydration on every hydrating, unpaused volume
// before Run's Restore re-enables it under this loop's Regulator (Restore
// can take seconds: iSCSI logins, lookups). Hydration may be on from
// before this loop with settings nobody regulates now: a burst left on by
// a `lunferry run` that stopped, or `migrate start` just before.
func (p *Planner) holdAtStart(ctx context.Context) {
	if p.o.DryRun || p.o.Ports.Regulator == nil {
		return
	}
	all, err := p.store.LoadAll()
	if err != nil {
		return // Restore reports it
	}
	var names []string
	for _, v := range all {
		if v.Step == StepHydrating && !v.Paused {
			names = append(names, v.Spec.Name)
		}
	}
	p.holdBursts(ctx, names)
}

// stateStamp is the volumes directory's modification time (zero when it
// cannot be read).
func (p *Planner) stateStamp() time.Time {
	fi, err := os.Stat(p.store.volumesDir())
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

const (
	// wakeSlack is how early a wake-up may be served.
	wakeSlack = time.Millisecond
	// lockRetry is the wait before a light step retries a held lock.
	lockRetry = 20 * time.Millisecond
	// statePoll is how often Run looks for changes other commands made.
	statePoll = 100 * time.Millisecond
)

// betweenTicks serves the wake-ups the Regulator asks for among volumes
// until tick fires, ctx ends or the volumes directory's modification time
// differs from seen (checked every statePoll; a zero seen is always
// different, for a skipped round).
func (p *Planner) betweenTicks(ctx context.Context, volumes []string, tick <-chan time.Time, seen time.Time) {
	var active []string
	if p.o.Ports.Regulator != nil && !p.o.DryRun {
		active = append(active, volumes...)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	poll := time.NewTicker(statePoll)
	defer poll.Stop()
	for {
		var wait time.Duration
		active, wait = p.serveWakes(ctx, active)
		// With nothing to wake, wait for the round or a change only.
		var wake <-chan time.Time
		if len(active) > 0 {
			timer.Reset(wait)
			wake = timer.C
		}
		// After light steps (wait 0), ctx, the round and the state are
		// looked at before going on, so that many volumes cannot starve
		// them.
		select {
		case <-ctx.Done():
			return
		case <-tick:
			return
		case <-poll.C:
			// (Go 1.23+ timers: Reset after Stop never sees a stale
			// expiry, no draining needed.)
			timer.Stop()
			if !p.stateStamp().Equal(seen) {
				return
			}
		case <-wake:
		}
	}
}

// serveWakes runs the light steps now due among the active volumes. It
// returns the volumes still waiting for a wake-up and how long until the
// next one is due (lockRetry while another command holds the lock).
func (p *Planner) serveWakes(ctx context.Context, active []string) ([]string, time.Duration) {
	reg := p.o.Ports.Regulator
	now := p.o.Now()
	due, active, first := dueWakes(reg, active, now)
	if len(due) == 0 {
		return active, first.Sub(now)
	}
	drop, busy := p.regulateDue(ctx, due)
	if busy {
		return active, lockRetry
	}
	// A volume whose wake-up did not move is left to the next round, so
	// that this loop cannot spin.
	after := p.o.Now()
	for _, name := range due {
		if at, ok := reg.Wake(name); !ok || !at.After(after) {
			drop = append(drop, name)
		}
	}
	return without(active, drop), 0
}

// dueWakes splits the volumes that still want a wake-up into those due at
// now and the rest, and returns the earliest wake-up of the rest.
func dueWakes(reg Regulator, active []string, now time.Time) (due, keep []string, first time.Time) {
	for _, name := range active {
		at, ok := reg.Wake(name)
		if !ok {
			continue
		}
		keep = append(keep, name)
		if !at.After(now.Add(wakeSlack)) {
			due = append(due, name)
		} else if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return due, keep, first
}

// regulateDue runs the light step of each volume in due under the lock. It
// returns the volumes to leave to the next round (paused, done, failed, in
// error), or busy when another command holds the lock.
func (p *Planner) regulateDue(ctx context.Context, due []string) (drop []string, busy bool) {
	l, err := AcquireLock(ctx, p.o.StateDir, 0)
	if errors.Is(err, ErrLocked) {
		p.holdBursts(ctx, due)
		return nil, true
	}
	if err != nil {
		return due, false
	}
	defer l.Release()
	for _, name := range due {
		if !p.lightStep(ctx, name) {
			drop = append(drop, name)
		}
	}
	return drop, false
}

// lightStep is one regulation step of a volume between rounds: status,
// Regulate, messages, no state saved. It reports false when the volume is
// left to the next round.
func (p *Planner) lightStep(ctx context.Context, name string) bool {
	reg := p.o.Ports.Regulator
	v, err := p.store.Load(name)
	if err != nil {
		return false
	}
	if v.Step != StepHydrating || v.Paused {
		// Paused or moved on by another command since the round.
		reg.Forget(name)
		return false
	}
	st, err := p.o.Ports.Mapper.CloneStatus(ctx, DMName(name))
	if err != nil || st.Faulty() || statusComplete(st) {
		// The next round records it.
		return false
	}
	if _, me := p.regulate(ctx, v, st, p.o.Now(), false); me != nil {
		p.logf("%s", me.logLine())
		return false
	}
	return true
}

// holdBursts disables hydration on the volumes in due whose status shows it
// enabled, while another command holds the lock (a cutover with its hooks
// can hold it for minutes), or before Restore (holdAtStart). A light step cannot check the volume's state
// then, but ending a burst is always safe: it cannot resume a paused
// volume or exceed a throttle, and the next light step or round re-enables
// hydration under the throttle. Without it, a burst meant to last 10 ms
// would run at the device's full speed for as long as the lock is held.
func (p *Planner) holdBursts(ctx context.Context, due []string) {
	for _, name := range due {
		st, err := p.o.Ports.Mapper.CloneStatus(ctx, DMName(name))
		if err != nil || st.Faulty() || !st.HydrationEnabled() {
			continue
		}
		if _, me := p.send(ctx, name, []string{dm.MsgDisableHydration}, false); me != nil {
			p.logf("%s", me.logLine())
		}
	}
}

// without returns names minus drop, in order.
func without(names, drop []string) []string {
	if len(drop) == 0 {
		return names
	}
	out := names[:0]
	for _, n := range names {
		keep := true
		for _, d := range drop {
			if n == d {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, n)
		}
	}
	return out
}
