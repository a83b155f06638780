package plan

import (
	"context"
	"fmt"
	"time"

	"github.com/lunferry/lunferry/dm"
)

// Finalize swaps the clone live to linear over the new LUN once hydration is
// complete, detaches the old LUN and frees the metadata. Before hydration
// completes it refuses with ErrNotReady.
func (p *Planner) Finalize(ctx context.Context, name string) (*Volume, error) {
	return p.guarded(ctx, cmdFinalize, name, stepFuncs{
		before: func(v *Volume, _ []*Volume) error {
			if err := p.checkPresent(ctx, v); err != nil {
				return err
			}
			if err := p.reconcileDevice(ctx, v); err != nil {
				return err
			}
			if v.Step == StepHydrating || v.Step == StepHydrated {
				return p.markHydrated(ctx, v)
			}
			return nil
		},
		run: func(v *Volume, all []*Volume) error { return p.finalize(ctx, v, all) },
	})
}

// markHydrated checks, from a committed status, that the clone is complete
// and moves a hydrating volume to hydrated (the control loop may not have
// seen it yet); otherwise it refuses with ErrNotReady, before finalize
// saves a step (a volume recorded hydrated is hydrated again by start or
// run).
func (p *Planner) markHydrated(ctx context.Context, v *Volume) error {
	name := v.Spec.Name
	st, err := p.o.Ports.Mapper.CommitStatus(ctx, DMName(name))
	if err != nil {
		return fmt.Errorf("plan: volume %s: read clone status: %w", name, err)
	}
	if !statusComplete(st) {
		stall := ""
		if since, ok := v.Stalled(p.o.Now()); ok {
			stall = fmt.Sprintf(" and has made no progress since %s (%v: %s; see `lunferry migrate status %s`)", since.Format(time.RFC3339), ErrStalled, stallCause(v, since), name)
		}
		return fmt.Errorf("plan: volume %s: %w: hydration is at %.1f%% (%d of %d regions)%s: finalize once it reaches 100%% (see `lunferry migrate status %s`)",
			name, ErrNotReady, 100*st.Fraction(), st.HydratedRegions, st.TotalRegions, stall, name)
	}
	if v.Step == StepHydrating {
		v.Step, v.HydratedAt = StepHydrated, p.o.Now().UTC()
	}
	return nil
}

func (p *Planner) finalize(ctx context.Context, v *Volume, all []*Volume) error {
	s := &v.Spec
	if _, err := p.runHooks(ctx, v, "pre-finalize", s.Hooks.PreFinalize); err != nil {
		return err
	}
	if !v.Linear {
		if err := p.swapToLinear(ctx, v); err != nil {
			return err
		}
	}
	for _, kind := range []ObjectKind{ObjFence, ObjOldLogin, ObjMetadata} {
		if err := p.remove(ctx, v, kind, all); err != nil {
			return err
		}
	}
	if _, err := p.runHooks(ctx, v, "post-finalize", s.Hooks.PostFinalize); err != nil {
		return err
	}
	v.FinalizedAt = p.o.Now().UTC()
	return nil
}

// swapToLinear checks that the clone is complete and swaps its table live
// to linear over the new LUN, then records it: from then on restore builds
// linear and abort is refused.
func (p *Planner) swapToLinear(ctx context.Context, v *Volume) error {
	s := &v.Spec
	name := DMName(s.Name)
	st, err := p.o.Ports.Mapper.CommitStatus(ctx, name)
	if err != nil {
		return fmt.Errorf("plan: volume %s: read clone status: %w", s.Name, err)
	}
	if !statusComplete(st) {
		return fmt.Errorf("plan: volume %s: %w: clone reports %d of %d regions hydrated: `lunferry migrate start %s` (and `lunferry run`) hydrates the rest, then rerun finalize",
			s.Name, ErrNotReady, st.HydratedRegions, st.TotalRegions, s.Name)
	}
	p.logf("volume %s: swap %s live to: %s", s.Name, name, LinearLine(v.SizeSectors, v.NewDisk.Path))
	held, err := p.o.Ports.Mapper.Swap(ctx, name, LinearLine(v.SizeSectors, v.NewDisk.Path))
	if err != nil {
		return fmt.Errorf("plan: volume %s: swap %s to linear: %w", s.Name, name, err)
	}
	p.logf("volume %s: swapped; I/O held for %s", s.Name, held.Round(time.Millisecond))
	v.Linear, v.SwapHeld = true, Duration(held)
	return p.save(v)
}

// statusComplete reports a clone that is healthy and fully hydrated.
func statusComplete(st dm.CloneStatus) bool { return !st.Faulty() && st.Hydrated() }
