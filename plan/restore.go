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
// interrupted abort is completed.
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
	r := RestoreResult{Volume: v.Spec.Name, Step: v.Step}
	name := v.Spec.Name
	switch v.Step {
	case StepNew, StepAborted, StepFaulty:
		if v.Step == StepFaulty {
			r.Hint = fmt.Sprintf("volume is faulty: run `lunferry migrate abort %s`", name)
		}
		return r
	case StepFinalized:
		// The host is served by linear over the new LUN: rebuild it.
	case StepHandedOver:
		// The host uses the new array directly; the proxy has nothing.
		return r
	case StepHandingOver:
		if !v.HostMovedAt.IsZero() {
			// The host left the proxy: rebuilding the export would only
			// offer it the proxy again.
			r.Hint = fmt.Sprintf("handover was interrupted after the host left the proxy; nothing rebuilt: rerun `lunferry migrate handover %s` to finish", name)
			return r
		}
		// The host may still be on the proxy: rebuild it, as finalized.
	case StepAborting:
		r.Hint = "finishing the interrupted abort"
	}
	fail := func(err error) RestoreResult {
		r.Error = err.Error()
		r.Step = v.Step
		return r
	}
	if v.Step == StepAborting {
		p.logf("volume %s: completing interrupted abort", name)
		for _, k := range []ObjectKind{ObjExport, ObjDevice, ObjOldLogin, ObjMetadata, ObjNewLogin} {
			if err := p.undoObject(ctx, v, k, all); err != nil {
				return fail(err)
			}
		}
		if _, err := p.runHooks(ctx, v, "post-abort", v.Spec.Hooks.PostAbort); err != nil {
			return fail(err)
		}
		v.Step, v.AbortedAt, v.HooksDone = StepAborted, p.o.Now().UTC(), nil
		r.Step = v.Step
		if err := p.save(v); err != nil {
			return fail(err)
		}
		r.Hint = abortReport(v, v.AbortFrom).Message
		return r
	}
	// Rebuild in creation order.
	var dev string
	for _, o := range append([]Object(nil), v.Objects...) {
		var err error
		switch o.Kind {
		case ObjNewLogin:
			err = p.attach(ctx, v, ObjNewLogin, v.Spec.New, false)
		case ObjOldLogin:
			err = p.attach(ctx, v, ObjOldLogin, v.Spec.Old, true)
		case ObjMetadata:
			if v.MetadataFile != "" {
				var d string
				d, err = p.o.Ports.Metadata.CreateFile(ctx, v.MetadataFile, v.MetadataBytes, false)
				if err == nil {
					err = p.created(v, ObjMetadata, d)
				}
			}
		case ObjDevice:
			if v.NewDisk == nil || (!v.Linear && v.OldDisk == nil) {
				err = fmt.Errorf("plan: volume %s: disks not recorded, cannot rebuild the device", name)
				break
			}
			dev, err = p.ensureDevice(ctx, v)
		case ObjExport:
			if dev == "" {
				if d := v.object(ObjDevice); d != nil {
					dev = d.Device
				}
			}
			err = p.ensureExport(ctx, v, dev)
		}
		if err != nil {
			return fail(fmt.Errorf("rebuild %s: %w", o.Kind, err))
		}
		r.Rebuilt = append(r.Rebuilt, o.Kind)
	}
	if v.Step == StepHydrating && !v.Paused {
		if err := p.enable(ctx, v); err != nil {
			return fail(err)
		}
		// A fresh rate measurement: the old sample predates the reboot.
		v.Progress.At = time.Time{}
		if err := p.save(v); err != nil {
			return fail(err)
		}
	}
	switch v.Step {
	case StepPreparing:
		r.Hint = fmt.Sprintf("prepare was interrupted: rerun `lunferry migrate prepare %s` or `lunferry migrate abort %s`", name, name)
	case StepCuttingOver:
		r.Hint = fmt.Sprintf("cutover was interrupted: rerun `lunferry migrate cutover %s` to resume or `lunferry migrate abort %s` to roll back", name, name)
	case StepFinalizing:
		r.Hint = fmt.Sprintf("finalize was interrupted: rerun `lunferry migrate finalize %s`", name)
	case StepHandingOver:
		r.Hint = fmt.Sprintf("handover was interrupted before the host left the proxy; the proxy serves it again: rerun `lunferry migrate handover %s`", name)
	case StepHydrating:
		r.Hint = "hydration continues from the progress kept in the metadata; keep `lunferry run` going"
	}
	return r
}
