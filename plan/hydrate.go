package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
)

// Start enables background hydration of a cut-over volume. The throttle is
// kept by the controller of `lunferry run` (see Tick).
func (p *Planner) Start(ctx context.Context, name string) (*Volume, error) {
	return p.guarded(ctx, cmdStart, name, stepFuncs{before: p.presentFor(ctx), run: func(v *Volume, _ []*Volume) error {
		if v.Step == StepHydrated {
			// Recorded hydrated: start again only if the clone says
			// otherwise (a power loss took back uncommitted progress).
			st, err := p.o.Ports.Mapper.CommitStatus(ctx, DMName(name))
			if err != nil {
				return fmt.Errorf("plan: volume %s: read clone status: %w", name, err)
			}
			if st.Faulty() || st.Hydrated() {
				return nil
			}
			p.logf("volume %s: recorded hydrated, but the clone has %d of %d regions: hydrating the rest", name, st.HydratedRegions, st.TotalRegions)
		}
		v.Step = StepHydrating
		v.LastError = ""
		if err := p.save(v); err != nil {
			return err
		}
		if v.Paused {
			p.logf("volume %s is paused: run `lunferry migrate resume %s` to hydrate", name, name)
			return nil
		}
		return p.enable(ctx, v)
	}})
}

// Pause stops background hydration until Resume; host I/O goes on.
func (p *Planner) Pause(ctx context.Context, name string) error {
	_, err := p.guarded(ctx, cmdPause, name, stepFuncs{before: p.presentFor(ctx, StepHydrating), run: func(v *Volume, _ []*Volume) error {
		v.Paused = true
		if err := p.save(v); err != nil {
			return err
		}
		p.forget(name)
		if v.Step != StepHydrating {
			return nil
		}
		if _, me := p.send(ctx, name, []string{dm.MsgDisableHydration}, true); me != nil {
			return fmt.Errorf("plan: volume %s: disable hydration: %w", name, me.err)
		}
		return nil
	}})
	return err
}

// Resume undoes Pause. A hydrating volume's hydration is enabled even if
// the pause flag is already clear: a resume killed between clearing it
// and enabling hydration is finished by its rerun.
func (p *Planner) Resume(ctx context.Context, name string) error {
	_, err := p.guarded(ctx, cmdResume, name, stepFuncs{before: p.presentFor(ctx, StepHydrating), run: func(v *Volume, _ []*Volume) error {
		if v.Paused {
			v.Paused = false
			if err := p.save(v); err != nil {
				return err
			}
		}
		if v.Step == StepHydrating {
			return p.enable(ctx, v)
		}
		return nil
	}})
	return err
}

// presentFor is a step's before check that refuses, in the given steps
// (any step when none is given), objects gone from the kernel (see
// checkPresent): after a reboot without restore, start, pause and resume
// would otherwise save their change and then fail on a device that is not
// there.
func (p *Planner) presentFor(ctx context.Context, in ...Step) func(v *Volume, _ []*Volume) error {
	return func(v *Volume, _ []*Volume) error {
		if len(in) > 0 && !slices.Contains(in, v.Step) {
			return nil
		}
		return p.checkPresent(ctx, v)
	}
}

// SetThrottle replaces a volume's throttle schedule; `lunferry run` applies
// it at its next tick.
func (p *Planner) SetThrottle(ctx context.Context, name string, sched clone.Schedule) error {
	_, err := p.guarded(ctx, cmdThrottle, name, stepFuncs{run: func(v *Volume, _ []*Volume) error {
		v.Spec.Throttle = sched
		p.logf("volume %s: throttle %s", name, sched)
		return p.save(v)
	}})
	return err
}

// enable starts hydration under the throttle: the Regulator's first
// decision (threshold, batch size, enable) is applied at once, so that
// hydration never runs unthrottled until the next control round. Without a
// Regulator, hydration is simply enabled. A throttled volume is left to
// Run's loop: outside it nothing would end the burst the first decision
// starts, and the volume would hydrate faster than its throttle.
func (p *Planner) enable(ctx context.Context, v *Volume) error {
	name := v.Spec.Name
	// A new start for stall detection: paused or stopped time does not
	// count.
	v.ProgressAt = p.o.Now().UTC()
	if rate := v.Spec.Throttle.RateAt(p.o.Now()); !p.inLoop && (rate != clone.Unlimited || v.Spec.Throttle.Adaptive > 0) {
		p.logf("volume %s: throttled to %s now: hydration runs under `lunferry run`, which keeps the throttle", name, rate)
		return nil
	}
	var me *messageError
	if r := p.o.Ports.Regulator; r == nil || p.o.DryRun {
		_, me = p.send(ctx, name, []string{dm.MsgEnableHydration}, true)
	} else {
		st, err := p.o.Ports.Mapper.CloneStatus(ctx, DMName(name))
		if err != nil {
			return fmt.Errorf("plan: volume %s: read clone status: %w", name, err)
		}
		r.Forget(name)
		_, me = p.regulate(ctx, v, st, p.o.Now(), true)
	}
	if me == nil {
		return nil
	}
	v.LastError = me.err.Error()
	if err := p.save(v); err != nil {
		return errors.Join(me, err)
	}
	return me
}

// regulate asks the Regulator for the settings that keep v at its
// throttle, given status st read at now, and sends them.
func (p *Planner) regulate(ctx context.Context, v *Volume, st dm.CloneStatus, now time.Time, verbose bool) ([]string, *messageError) {
	msgs := p.o.Ports.Regulator.Regulate(v.Spec.Name, st, now, p.rateAt(ctx, v, st, now))
	return p.send(ctx, v.Spec.Name, msgs, verbose)
}

// rateAt is the rate v's throttle allows at now: its schedule's, and with
// the adaptive clause what the Regulator's yield to the host leaves of it.
// Counters that cannot be read leave the schedule's rate, said once per
// failing spell.
func (p *Planner) rateAt(ctx context.Context, v *Volume, st dm.CloneStatus, now time.Time) clone.Rate {
	sched := v.Spec.Throttle
	ceiling := sched.RateAt(now)
	if sched.Adaptive <= 0 {
		return ceiling
	}
	name := v.Spec.Name
	io, err := p.o.Ports.Mapper.IOCounters(ctx, DMName(name))
	if err != nil {
		if !p.noCounters[name] {
			p.logf("volume %s: adaptive throttle: read the host's I/O counters: %v: hydrating at the schedule's %s until they can be read", name, err, ceiling)
		}
		if p.noCounters == nil {
			p.noCounters = map[string]bool{}
		}
		p.noCounters[name] = true
		return ceiling
	}
	delete(p.noCounters, name)
	hydrated := st.HydratedRegions * st.RegionSize.Bytes()
	return p.o.Ports.Regulator.Yield(name, io, hydrated, now, ceiling, sched.Adaptive)
}

// send sends msgs in order to the volume's clone device and returns those
// sent; it stops at the first that fails. verbose logs
// each message (commands do; the control loop's rounds do not).
func (p *Planner) send(ctx context.Context, volume string, msgs []string, verbose bool) ([]string, *messageError) {
	name := DMName(volume)
	var sent []string
	for _, m := range msgs {
		if verbose {
			p.logf("volume %s: message %s: %s", volume, name, m)
		}
		if err := p.o.Ports.Mapper.Message(ctx, name, m); err != nil {
			return sent, &messageError{volume: volume, msg: m, err: err}
		}
		sent = append(sent, m)
	}
	return sent, nil
}

// messageError is a dm message the clone device refused.
type messageError struct {
	volume, msg string
	err         error
}

// Error renders "plan: volume V: message "M": cause".
func (e *messageError) Error() string {
	return fmt.Sprintf("plan: volume %s: message %q: %v", e.volume, e.msg, e.err)
}

func (e *messageError) Unwrap() error { return e.err }

// logLine is the error as the control loop logs it.
func (e *messageError) logLine() string {
	return fmt.Sprintf("volume %s: message %q: %v", e.volume, e.msg, e.err)
}

// forget drops the Regulator's history of a volume (paused, finished,
// aborted), if there is a Regulator.
func (p *Planner) forget(volume string) {
	if p.o.Ports.Regulator != nil {
		p.o.Ports.Regulator.Forget(volume)
	}
}
