package plan

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RestoreResult says what restore did for one volume.
type RestoreResult struct {
	// Volume is the volume's name.
	Volume string `json:"volume"`
	// Step is the volume's step after restore.
	Step Step `json:"step"`
	// Rebuilt lists the objects re-created or found in place.
	Rebuilt []ObjectKind `json:"rebuilt,omitempty"`
	// Hint tells the admin what to do next, for interrupted steps.
	Hint string `json:"hint,omitempty"`
	// Error is set when the volume could not be restored.
	Error string `json:"error,omitempty"`
}

// Restore rebuilds, after a proxy reboot or crash, every volume's kernel
// objects from the state: sessions, metadata loop device (never zeroed:
// dm-clone keeps hydration progress there), the clone device with hydration
// off (or linear after finalize), the export; then re-enables hydration for
// volumes that were hydrating. Objects still present are kept. Interrupted
// steps are not guessed: the result says to rerun or abort them; an
// interrupted abort is completed. What restore does in each step is in the
// step table (steps).
func (p *Planner) Restore(ctx context.Context) ([]RestoreResult, error) {
	var res []RestoreResult
	err := p.locked(ctx, func() error {
		all, err := p.store.LoadAll()
		if err != nil {
			return err
		}
		var errs []error
		for _, v := range all {
			r := p.restoreOne(ctx, v, all)
			if r.Error != "" {
				errs = append(errs, fmt.Errorf("volume %s: %s", v.Spec.Name, r.Error))
			}
			res = append(res, r)
		}
		if len(errs) > 0 {
			return fmt.Errorf("plan: restore: %w", errors.Join(errs...))
		}
		return nil
	})
	return res, err
}

func (p *Planner) restoreOne(ctx context.Context, v *Volume, all []*Volume) RestoreResult {
	info := v.info()
	r := RestoreResult{Volume: v.Spec.Name, Step: v.Step, Hint: info.hint}
	var err error
	switch info.restore {
	case restoreNothing:
		return r
	case restoreFinishAbort:
		err = p.restoreAbort(ctx, v, all, &r)
	case restoreRebuild:
		r.Rebuilt, err = p.rebuildAll(ctx, v)
		if err == nil {
			err = p.rehydrate(ctx, v)
		}
	}
	r.Step = v.Step
	if err != nil {
		r.Error = err.Error()
		if info.restore == restoreRebuild {
			r.Hint = "" // the step did not get as far as the hint says
		}
	}
	return r
}

// restoreAbort completes an interrupted abort.
func (p *Planner) restoreAbort(ctx context.Context, v *Volume, all []*Volume, r *RestoreResult) error {
	p.logf("volume %s: completing interrupted abort", v.Spec.Name)
	if err := p.finishAbort(ctx, v, all); err != nil {
		return err
	}
	v.Step, v.HooksDone = StepAborted, nil
	if err := p.save(v); err != nil {
		return err
	}
	r.Hint = abortReport(v, v.AbortFrom).Message
	return nil
}

// rehydrate re-enables hydration of a volume that was hydrating, under its
// throttle.
func (p *Planner) rehydrate(ctx context.Context, v *Volume) error {
	if v.Step != StepHydrating || v.Paused {
		return nil
	}
	if err := p.enable(ctx, v); err != nil {
		return err
	}
	// A fresh rate measurement: the old sample predates the reboot.
	v.Progress.At = time.Time{}
	return p.save(v)
}
