package plan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lunferry/lunferry/clone"
)

// ErrHostWrites: verify cannot run because the host's writes since
// cutover, which exist on the new LUN only, cannot be told apart from a
// bad copy (the volume was cut over without an era layer).
var ErrHostWrites = errors.New("the host's writes since cutover cannot be told apart from a bad copy")

// cmdVerify reads both LUNs; it sets no step and runs while the clone
// still has the old LUN attached.
var cmdVerify = &command{
	name: "verify", from: []Step{StepCutOver, StepHydrating, StepHydrated},
	hints: map[Step]string{
		StepFinalized:   verifyAfterFinalize,
		StepHandingOver: verifyAfterFinalize,
		StepHandedOver:  verifyAfterFinalize,
	},
	hint: "verify compares the old and the new LUN between cutover and finalize",
}

const verifyAfterFinalize = "finalize detached the old LUN: there is nothing left to compare the new LUN with"

// VerifyOptions tune Planner.Verify.
type VerifyOptions struct {
	// Rate caps the bytes read per second from each LUN (Unlimited or
	// Paused: no cap).
	Rate clone.Rate
	// HostStopped is the admin's word that the host has not written to
	// the volume since cutover, so that every hydrated region of the new
	// LUN must equal the old LUN's.
	HostStopped bool
	// OnProgress, when set, gets the bytes compared so far and the total.
	OnProgress func(done, total uint64)
	// Restart compares from the start even when an earlier verify of the
	// volume left a checkpoint it could resume.
	Restart bool
}

// VerifyReport is what Verify compared and found.
type VerifyReport struct {
	// Volume is the volume's name; Old and New the disks compared.
	Volume string `json:"volume"`
	Old    string `json:"old"`
	New    string `json:"new"`
	// Result has the bytes compared and the differing ranges.
	Result clone.VerifyResult `json:"result"`
	// HostWritten are the era blocks the host wrote since cutover, which
	// hold its data and not the old LUN's: they are not compared with the
	// old LUN (see HostView).
	// HostWrittenBytes is their size. Both are empty with HostStopped.
	HostWritten      []clone.Extent `json:"hostWritten,omitempty"`
	HostWrittenBytes uint64         `json:"hostWrittenBytes"`
	// HostView compares the new LUN with the host's view (the device the
	// export serves) over the HostWritten blocks the clone has hydrated:
	// both must hold the host's data.
	HostView clone.VerifyResult `json:"hostView"`
	// Thin is what the cutover skipped of the old LUN's unmapped ranges:
	// those regions count as hydrated and are compared like any other.
	Thin *ThinState `json:"thin,omitempty"`
	// WrittenDuring are differences in blocks the host wrote while verify
	// read them: its data, not a bad copy; they are left out of Result
	// and HostView.
	WrittenDuring []clone.Extent `json:"writtenDuring,omitempty"`
	// ResumedFrom is the byte this verify resumed an earlier one's
	// comparison of the old and the new LUN at (0: from the start), from
	// its checkpoint saved at ResumedCheckpoint; Result covers both runs.
	ResumedFrom       uint64     `json:"resumedFrom,omitempty"`
	ResumedCheckpoint *time.Time `json:"resumedCheckpoint,omitempty"`
	// CheckpointNote says why an earlier verify's checkpoint was not
	// resumed.
	CheckpointNote string `json:"checkpointNote,omitempty"`
}

// Verify compares the old and the new LUN of volume name over every
// region the clone has hydrated, reading both (never writing), paced to
// o.Rate. The state directory is locked only while the volume is checked
// against the kernel, so `lunferry run` goes on during the reads. With an
// era layer the blocks the host wrote since cutover are compared between
// the new LUN and the host's view instead (see VerifyReport.HostWritten,
// HostView); without one, and without o.HostStopped, it refuses
// with ErrHostWrites. Differences come back as a *clone.MismatchError
// (wrapping clone.ErrMismatch) with the report.
func (p *Planner) Verify(ctx context.Context, name string, o VerifyOptions) (*VerifyReport, error) {
	if p.o.Ports.Verifier == nil {
		return nil, fmt.Errorf("plan: volume %s: verify is not available here (no verifier)", name)
	}
	var meta, view string
	var size uint64
	var tracked *EraState
	var during uint32
	var ckpt verifyCheckpoint
	var before *verifyCheckpoint
	rep := &VerifyReport{Volume: name}
	_, err := p.guarded(ctx, cmdVerify, name, stepFuncs{run: func(v *Volume, _ []*Volume) error {
		if err := p.checkPresent(ctx, v); err != nil {
			return err
		}
		m := v.object(ObjMetadata)
		if v.OldDisk == nil || v.NewDisk == nil || m == nil || m.Device == "" {
			return fmt.Errorf("plan: volume %s: %w: the state records no old disk, new disk or metadata device at step %s", name, ErrStateCorrupt, v.Step)
		}
		rep.Old, rep.New, meta, size = v.OldDisk.Path, v.NewDisk.Path, m.Device, v.SizeSectors*512
		rep.Thin = v.Thin
		ckpt = newVerifyCheckpoint(v, o.HostStopped)
		if !o.Restart {
			before, rep.CheckpointNote = p.store.loadVerifyCheckpoint(name, ckpt)
		}
		if o.HostStopped {
			return nil
		}
		tracked = v.trackedEra()
		if err := p.hostWritten(ctx, v, rep); err != nil {
			return err
		}
		// A new era: what the host writes from here on is set apart
		// from differences in the host's view.
		var err error
		if during, err = p.o.Ports.Era.Checkpoint(ctx, EraName(name)); err != nil {
			return fmt.Errorf("plan: volume %s: era checkpoint: %w", name, err)
		}
		view = exportDevice(v)
		return nil
	}})
	if err != nil {
		return nil, err
	}
	rep.Result, err = p.compareOldNew(ctx, name, rep, meta, size, o, ckpt, before)
	if err != nil && errors.Is(err, clone.ErrMismatch) && tracked != nil {
		err = p.dropWrittenDuring(ctx, name, tracked, tracked.Since, size, rep, &rep.Result, rep.Old, rep.New, err)
	}
	if err == nil && tracked != nil && len(rep.HostWritten) > 0 {
		err = p.verifyHostView(ctx, name, tracked, during, view, meta, size, rep, o)
	}
	if err != nil {
		return rep, fmt.Errorf("plan: volume %s: %w", name, err)
	}
	return rep, nil
}

// compareOldNew compares the old and the new LUN over what the clone has
// hydrated but rep.HostWritten, resuming an earlier verify's checkpoint
// when there is one, saving its own as it goes and removing it once the
// comparison has run to the end.
func (p *Planner) compareOldNew(ctx context.Context, name string, rep *VerifyReport, meta string, size uint64, o VerifyOptions, ckpt verifyCheckpoint, before *verifyCheckpoint) (clone.VerifyResult, error) {
	var prev clone.VerifyResult
	if before != nil {
		prev = before.Result
		rep.ResumedFrom = prev.Next
		saved := before.Saved
		rep.ResumedCheckpoint = &saved
	}
	var saveErr error
	lastSave := p.o.Now()
	save := func(r clone.VerifyResult) {
		ckpt.Result, ckpt.Saved = resumed(prev, r), p.o.Now().UTC()
		if err := p.store.saveVerifyCheckpoint(name, ckpt); err != nil && saveErr == nil {
			saveErr = err
			fmt.Fprintf(p.o.Log, "volume %s: verify goes on without a checkpoint to resume: %v\n", name, err)
		}
	}
	res, err := p.o.Ports.Verifier.Verify(ctx, rep.Old, rep.New, meta, size, rep.HostWritten,
		clone.VerifyOptions{Rate: o.Rate, OnProgress: o.OnProgress, From: prev.Next, OnChunk: func(r clone.VerifyResult) {
			if now := p.o.Now(); now.Sub(lastSave) >= checkpointEvery {
				lastSave = now
				save(r)
			}
		}})
	whole := resumed(prev, res)
	if err != nil && !errors.Is(err, clone.ErrMismatch) {
		// Stopped early: the next verify resumes where this one got.
		save(res)
		if saveErr == nil {
			err = fmt.Errorf("%w (`lunferry migrate verify %s` resumes at byte %d; --restart compares from the start)", err, name, res.Next)
		}
		return whole, err
	}
	if rerr := p.store.removeVerifyCheckpoint(name); rerr != nil {
		fmt.Fprintf(p.o.Log, "volume %s: %v\n", name, rerr)
	}
	if !whole.Equal() {
		// Differences found before the resume count as much as these.
		return whole, &clone.MismatchError{A: rep.Old, B: rep.New, Result: whole}
	}
	return whole, nil
}

// FinalizeVerified is Finalize once Verify with o has found the copy
// clean: a difference (clone.ErrMismatch) or any error of verify leaves the
// volume as it was, with the report. Verify runs on a volume recorded
// hydrated (every region is then compared but those the host wrote); a
// hydrating one is refused with ErrNotReady before anything is read, and
// a finalize already under way or done is finished without verify (the
// old LUN may be detached).
func (p *Planner) FinalizeVerified(ctx context.Context, name string, o VerifyOptions) (*Volume, *VerifyReport, error) {
	v, err := p.Show(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	switch v.Step {
	case StepHydrated:
	case StepHydrating:
		return nil, nil, fmt.Errorf("plan: volume %s: %w: still hydrating as recorded (%d of %d regions): verify compares the whole copy once `migrate status` says hydrated; rerun then",
			name, ErrNotReady, v.Progress.HydratedRegions, v.Progress.TotalRegions)
	default:
		v, err := p.Finalize(ctx, name)
		return v, nil, err
	}
	rep, err := p.Verify(ctx, name, o)
	if err != nil {
		return nil, rep, err
	}
	v, err = p.Finalize(ctx, name)
	return v, rep, err
}
