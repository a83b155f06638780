package plan

import (
	"context"
	"errors"
	"fmt"
	"time"
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
	var res []TickResult
	var finalize []string
	l, err := AcquireLock(ctx, p.o.StateDir, 0)
	if errors.Is(err, ErrLocked) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	func() {
		defer l.Release()
		var all []*Volume
		all, err = p.store.LoadAll()
		if err != nil {
			return
		}
		for _, v := range all {
			if v.Step != StepHydrating || v.Paused {
				// Paused (perhaps by another lunferry) or done: the
				// controller's history and budget share go.
				if p.o.Ports.Regulator != nil {
					p.o.Ports.Regulator.Forget(v.Spec.Name)
				}
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
		return nil, err
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
	return res, nil
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
	if st.Failed {
		v.FaultFrom, v.Step = v.Step, StepFaulty
		v.LastError = fmt.Sprintf("%v: dm-clone reports its metadata failed: abort the volume (`lunferry migrate abort %s`); the old LUN is intact", ErrFaulty, name)
		r.Step, r.Error = v.Step, v.LastError
		p.save(v)
		return r
	}
	v.Progress = nextProgress(v.Progress, st, now)
	r.Progress = v.Progress
	if statusComplete(st) {
		v.Step, v.HydratedAt = StepHydrated, now.UTC()
		r.Step = v.Step
		if p.o.Ports.Regulator != nil {
			p.o.Ports.Regulator.Forget(name)
		}
		p.logf("volume %s: hydrated", name)
	} else if p.o.Ports.Regulator != nil {
		rate := v.Spec.Throttle.RateAt(now)
		for _, m := range p.o.Ports.Regulator.Regulate(name, st, now, rate) {
			if err := p.o.Ports.Mapper.Message(ctx, DMName(name), m); err != nil {
				r.Error = fmt.Sprintf("message %q: %v", m, err)
				break
			}
			r.Messages = append(r.Messages, m)
		}
	}
	if err := p.save(v); err != nil && r.Error == "" {
		r.Error = err.Error()
	}
	return r
}

// nextProgress folds a new status into the progress: the rate is an
// exponentially weighted average of the bytes hydrated between samples.
func nextProgress(prev Progress, st CloneStatus, now time.Time) Progress {
	n := Progress{HydratedRegions: st.HydratedRegions, TotalRegions: st.TotalRegions, RegionSectors: st.RegionSectors, At: now.UTC(), Rate: prev.Rate}
	if !prev.At.IsZero() && st.HydratedRegions >= prev.HydratedRegions {
		dt := now.Sub(prev.At).Seconds()
		if dt > 0 {
			inst := float64(st.HydratedRegions-prev.HydratedRegions) * float64(st.RegionSectors*512) / dt
			if prev.Rate == 0 {
				n.Rate = inst
			} else {
				n.Rate = 0.5*prev.Rate + 0.5*inst
			}
		}
	}
	if n.Rate > 0 && st.TotalRegions > st.HydratedRegions {
		left := float64(st.TotalRegions-st.HydratedRegions) * float64(st.RegionSectors*512)
		n.ETA = Duration(time.Duration(left / n.Rate * float64(time.Second)))
	}
	return n
}

// Run keeps the controller going until ctx ends: it restores the kernel
// objects first (after a reboot), then runs Tick every interval, reporting
// each round to report (which may be nil).
func (p *Planner) Run(ctx context.Context, interval time.Duration, autoFinalize bool, report func([]TickResult)) error {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if res, err := p.Restore(ctx); err != nil {
		p.logf("restore: %v", err)
	} else {
		for _, r := range res {
			if r.Hint != "" {
				p.logf("volume %s: %s", r.Volume, r.Hint)
			}
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := p.Tick(ctx, autoFinalize)
		if err != nil {
			return err
		}
		if report != nil && len(res) > 0 {
			report(res)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
