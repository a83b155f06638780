package plan

import (
	"context"
	"fmt"
	"slices"
)

// AbortReport says what an abort did.
type AbortReport struct {
	// Volume is the volume's name.
	Volume string `json:"volume"`
	// From is the step the abort started from.
	From Step `json:"from"`
	// HostWritesLost is true when the export had been created: writes the
	// host made since cutover exist only on the new LUN.
	HostWritesLost bool `json:"hostWritesLost"`
	// Message is the plain statement for the admin.
	Message string `json:"message"`
}

// Abort removes, in reverse order of creation, everything lunferry built
// for the volume (export, clone, sessions, metadata) and leaves the old LUN
// as it was. It works from any step before the live swap of finalize.
func (p *Planner) Abort(ctx context.Context, name string) (*AbortReport, error) {
	v, err := p.guarded(ctx, cmdAbort, name, stepFuncs{
		before: func(v *Volume, _ []*Volume) error {
			// A finalize killed inside its swap left the device
			// suspended, holding the host's I/O: settle it (the swap is
			// completed, and then there is nothing to roll back to)
			// before hooks run for minutes.
			if v.Step == StepFinalizing || v.Step == StepRollingBack || (v.Step == StepCuttingOver && v.passthrough()) {
				if err := p.reconcileDevice(ctx, v); err != nil {
					return err
				}
			}
			if v.Step == StepRollingBack && !v.rolledBack() && (v.Linear || v.Rollback.Round > 0) {
				return cmdAbort.refuse(v, StepRollingBack)
			}
			if v.Linear && !v.rolledBack() {
				return cmdAbort.refuse(v, StepFinalized)
			}
			// Saved with the "-ing" step: the report of an abort that
			// restore or a rerun finishes names where it came from.
			if v.Step != StepAborting {
				v.AbortFrom = v.Step
			}
			p.forget(name)
			return nil
		},
		run: func(v *Volume, all []*Volume) error {
			if v.passthrough() {
				return p.backOut(ctx, v, all)
			}
			if v.object(ObjExport) != nil {
				if _, err := p.runHooks(ctx, v, "pre-abort", v.Spec.Hooks.PreAbort); err != nil {
					return err
				}
			}
			return p.finishAbort(ctx, v, all)
		},
	})
	if err != nil {
		return nil, err
	}
	return abortReport(v, v.AbortFrom), nil
}

// finishAbort is the part of an abort after the host left the proxy: every
// object goes, newest first, then the post-abort hooks run.
func (p *Planner) finishAbort(ctx context.Context, v *Volume, all []*Volume) error {
	if !v.AbortTeardown {
		v.AbortTeardown = true
		if err := p.save(v); err != nil {
			return err
		}
	}
	if err := p.teardown(ctx, v, all); err != nil {
		return err
	}
	if _, err := p.runHooks(ctx, v, "post-abort", v.Spec.Hooks.PostAbort); err != nil {
		return err
	}
	v.AbortedAt = p.o.Now().UTC()
	return nil
}

// backOut is the abort of an online cutover before its takeover: the
// fence is released first (the host's direct paths come back next, and a
// write down one would get RESERVATION CONFLICT, which dm-multipath does
// not retry on another path), then the restoreDirectPaths hooks give the
// host its direct paths back and take the proxied ones away (they stand
// for the pre- and post-abort hooks, as the host never stops), then every
// other object goes.
func (p *Planner) backOut(ctx context.Context, v *Volume, all []*Volume) error {
	if err := p.remove(ctx, v, ObjFence, all); err != nil {
		return err
	}
	if v.object(ObjExport) != nil {
		if _, err := p.runHooks(ctx, v, "restore-direct-paths", v.Spec.Hooks.RestoreDirectPaths); err != nil {
			return err
		}
	}
	if !v.AbortTeardown {
		v.AbortTeardown = true
		if err := p.save(v); err != nil {
			return err
		}
	}
	if err := p.teardown(ctx, v, all); err != nil {
		return err
	}
	v.AbortedAt = p.o.Now().UTC()
	return nil
}

// CancelAbort takes back an abort that was interrupted before it began
// removing anything (in or before its pre-abort hooks): the volume returns
// to the step the abort came from. Hooks that already ran are not undone:
// the admin brings the host back to the proxy if they moved it. Objects
// gone from the kernel are refused (restore first), and hydration is
// enabled again before the step is saved back, so that an interrupted
// cancel is still pending and its rerun finishes it.
func (p *Planner) CancelAbort(ctx context.Context, name string) (*Volume, error) {
	return p.guarded(ctx, cmdCancelAbort, name, stepFuncs{
		before: func(v *Volume, _ []*Volume) error {
			if v.AbortTeardown {
				return cmdCancelAbort.refuse(v, StepAborted)
			}
			return p.checkPresent(ctx, v)
		},
		run: func(v *Volume, _ []*Volume) error {
			if v.AbortFrom == StepHydrating && !v.Paused {
				if err := p.enable(ctx, v); err != nil {
					return err
				}
			}
			ran := slices.Clone(v.HooksDone)
			v.Step, v.AbortFrom, v.HooksDone, v.LastError = v.AbortFrom, "", nil, ""
			if err := p.save(v); err != nil {
				return err
			}
			p.logf("volume %s: abort cancelled, back to %s", name, v.Step)
			if len(ran) > 0 {
				p.logf("volume %s: the pre-abort hooks that ran (%v) are not undone: if they moved the host off the proxy, bring it back", name, ran)
			}
			return nil
		},
	})
}

func abortReport(v *Volume, from Step) *AbortReport {
	r := &AbortReport{Volume: v.Spec.Name, From: from, HostWritesLost: v.Exported && !v.rolledBack()}
	switch {
	case v.rolledBack():
		r.Message = fmt.Sprintf("volume %s aborted after its rollback: the old LUN %s lun %d holds every write the host made, through the proxy to the end; nothing is lost",
			v.Spec.Name, v.Spec.Old.IQN, v.Spec.Old.LUN)
	case v.passthrough() && v.Cutover.Phase != "":
		r.Message = fmt.Sprintf("volume %s backed out of the online cutover (after phase %s): the host's writes went to the old LUN %s lun %d throughout, through the proxy or directly; it holds every write",
			v.Spec.Name, v.Cutover.Phase, v.Spec.Old.IQN, v.Spec.Old.LUN)
	case v.Exported:
		r.Message = fmt.Sprintf("volume %s aborted: the old LUN %s lun %d was never written by lunferry and holds the data as of cutover; writes the host made after cutover exist ONLY on the new LUN %s lun %d and are not on the old LUN",
			v.Spec.Name, v.Spec.Old.IQN, v.Spec.Old.LUN, v.Spec.New.IQN, v.Spec.New.LUN)
	default:
		r.Message = fmt.Sprintf("volume %s aborted before the host was served by the proxy: the old LUN %s lun %d is as it was",
			v.Spec.Name, v.Spec.Old.IQN, v.Spec.Old.LUN)
	}
	return r
}
