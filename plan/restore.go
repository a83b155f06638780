package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// err is Error as an error, for callers that branch on it.
	err error
}

// Restore rebuilds, after a proxy reboot or crash, every volume's kernel
// objects from the state: sessions, metadata loop device (never zeroed:
// dm-clone keeps hydration progress there), the clone device with hydration
// off (or linear after finalize), the export; then re-enables hydration for
// volumes that were hydrating. Objects still present are kept. Interrupted
// steps are not guessed: the result says to rerun or abort them. Only
// `migrate abort` finishes an abort: one interrupted before it removed
// anything is pending, and the proxy is rebuilt for the host. What restore
// does in each step is in the step table (steps).
//
// With names, only those volumes are restored.
func (p *Planner) Restore(ctx context.Context, names ...string) ([]RestoreResult, error) {
	var res []RestoreResult
	err := p.locked(ctx, func() error {
		all, err := p.store.LoadAll()
		if err != nil {
			return err
		}
		var errs []error
		for _, v := range all {
			if len(names) > 0 && !slices.Contains(names, v.Spec.Name) {
				continue
			}
			r := p.restoreOne(ctx, v)
			if r.err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", v.Spec.Name, r.err))
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

func (p *Planner) restoreOne(ctx context.Context, v *Volume) RestoreResult {
	info := v.info()
	r := RestoreResult{Volume: v.Spec.Name, Step: v.Step, Hint: info.hint}
	var err error
	switch info.restore {
	case restoreNothing:
		return r
	case restoreRebuild:
		if v.passthrough() || v.Step == StepRollingBack {
			// A takeover killed after its swap: record it before the
			// old LUN's disk would be made writable under the clone.
			// A rollback killed in its final round: settle the swap
			// before the old LUN's disk would be made read-only under
			// the linear table that serves the host from it.
			if err = p.reconcileDevice(ctx, v); err != nil {
				break
			}
		}
		r.Rebuilt, err = p.rebuildAll(ctx, v)
		if err == nil {
			err = p.rehydrate(ctx, v)
		}
	}
	r.Step = v.Step
	if err != nil {
		r.err, r.Error = err, err.Error()
		if info.restore == restoreRebuild {
			r.Hint = "" // the step did not get as far as the hint says
		}
	}
	return r
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

// Bounds of the wait between two restores of volumes that failed it.
const (
	restoreRetryMin = time.Second
	restoreRetryMax = time.Minute
)

// restoreRetry is Run's record of volumes still to restore: after a site
// power loss the arrays often come back after the proxy, and a path may be
// down for a while; Run retries with backoff until every volume is served.
type restoreRetry struct {
	// all: restore every volume (the first time, or when the last attempt
	// failed as a whole: lock, state directory).
	all bool
	// failed are the volumes whose last restore failed.
	failed []string
	// wait is the backoff; next when the next attempt is due.
	wait time.Duration
	next time.Time
}

// rebuildGone has restoreDue rebuild at once the volumes serving the host
// whose kernel objects were removed behind lunferry's back (an export
// deleted with targetcli, a session logged out by hand), and logs it.
func (p *Planner) rebuildGone(ctx context.Context, r *restoreRetry) {
	if p.o.DryRun || r.all {
		return
	}
	all, err := p.store.LoadAll()
	if err != nil {
		return // the round reports it
	}
	for _, v := range all {
		if v.info().restore != restoreRebuild || slices.Contains(r.failed, v.Spec.Name) {
			continue
		}
		gone, err := p.missing(ctx, v)
		if err != nil || len(gone) == 0 {
			continue
		}
		p.logf("volume %s: %v gone from the kernel (removed behind lunferry's back?): rebuilding", v.Spec.Name, gone)
		r.failed = append(r.failed, v.Spec.Name)
		r.next = time.Time{}
	}
}

// restoreDue runs the restore r waits for, if it is due, logs what it did
// and schedules the next attempt for what still failed.
func (p *Planner) restoreDue(ctx context.Context, r *restoreRetry) {
	if (!r.all && len(r.failed) == 0) || time.Now().Before(r.next) {
		return
	}
	names := r.failed
	if r.all {
		names = nil
	}
	res, err := p.Restore(ctx, names...)
	if ctx.Err() != nil {
		// Stopped mid-restore (SIGTERM, systemctl stop): not a failure;
		// the next start restores what is left.
		p.logf("restore interrupted: lunferry is stopping; its next start restores what is left")
		return
	}
	r.all, r.failed = false, nil
	for _, v := range res {
		switch {
		case v.Error != "":
			r.failed = append(r.failed, v.Volume)
			p.logf("volume %s: restore failed: %s", v.Volume, v.Error)
		case v.Hint != "":
			p.logf("volume %s: %s", v.Volume, v.Hint)
		}
	}
	if err != nil && len(r.failed) == 0 {
		r.all = true // the attempt as a whole failed
		p.logf("restore: %v", err)
	}
	if !r.all && len(r.failed) == 0 {
		r.wait = 0
		return
	}
	r.wait = min(max(2*r.wait, restoreRetryMin), restoreRetryMax)
	r.next = time.Now().Add(r.wait)
	p.logf("restore: trying again in %s", r.wait)
}
