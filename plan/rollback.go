package plan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/internal/crashpoint"
)

// Rollback (between cutover and handover) gives the host its data back on
// the old LUN with nothing lost. The era layer over the volume's device
// records every block the host wrote since cutover; rollback copies them
// from the host's view to the old LUN in rounds, each from a new era, until
// what is left is small, then holds the host's I/O at the device below the
// era layer, copies the last remainder from the new LUN and swaps that
// device live to linear over the old LUN. The host keeps its session and
// its disk; abort (or the admin's hooks) then ends the migration on the old
// array.
//
// The device is suspended below the era layer, not at it: the era
// device's worker must keep running to take the metadata snapshot that
// says what is left, and a host write marks its block (committed) before
// it reaches the suspended device, where it waits. The last remainder is
// read from the new LUN, as the suspended device cannot be read: every era
// block the host wrote lies in a region dm-clone hydrated (a write to a
// region hydrates it first) when the clone's region size is a multiple of
// the era block size, which rollback checks before it starts; after
// finalize the new LUN is the host's view itself. A rollback after
// finalize first attaches the old LUN again (pre-rollback hooks, the
// identity recorded at cutover checked, fenced again).

// Rollback's round limits: rounds go on until one copied at most
// rollbackSmall bytes, or less than the one before and under
// rollbackShrunk bytes, or rollbackMaxRounds rounds ran; the final round
// with the host's I/O held copies what is left.
const (
	rollbackSmall     = 16 << 20
	rollbackShrunk    = 64 << 20
	rollbackMaxRounds = 8
)

// RollbackState is the record of a volume's rollback.
type RollbackState struct {
	// From is the step the rollback started from.
	From Step `json:"from"`
	// Round is the number of copy rounds begun (the final one included).
	Round int `json:"round"`
	// CopiedSince is the era from which the host's writes may not be on
	// the old LUN yet: every block it last wrote in an earlier era is.
	CopiedSince uint32 `json:"copiedSince"`
	// RoundEra is the era the round under way began (CopiedSince once
	// its copy is done); saved before the copy.
	RoundEra uint32 `json:"roundEra,omitempty"`
	// Copied is the bytes copied to the old LUN so far (over all rounds,
	// repeated blocks counted again); LastRound and PrevRound those of
	// the last two completed rounds.
	Copied    uint64 `json:"copied"`
	LastRound uint64 `json:"lastRound"`
	PrevRound uint64 `json:"prevRound,omitempty"`
	// Final is set when the final round (the host's I/O held) began.
	Final bool `json:"final,omitempty"`
	// FinalBytes is what the final round copied (counted in Copied with
	// the swap), Held how long it held the host's I/O (0: not measured,
	// the round was interrupted after its swap).
	FinalBytes uint64   `json:"finalBytes,omitempty"`
	Held       Duration `json:"held,omitempty"`
	// Swapped is set once linear over the old LUN is loaded into the
	// device, after the last copy and before the resume that makes it
	// live: from then on the device serves the host from the old LUN and
	// restore builds it so.
	Swapped bool `json:"swapped,omitempty"`
}

// rolledBack reports whether v's device runs, or must run, linear over
// the old LUN after a rollback.
func (v *Volume) rolledBack() bool { return v.Rollback != nil && v.Rollback.Swapped }

// RollbackOptions tune Planner.Rollback.
type RollbackOptions struct {
	// Rate caps the bytes copied per second in the rounds before the
	// final one (Unlimited: the volume's throttle now, when it has a
	// rate; no cap otherwise). The final round, which holds the host's
	// I/O, is never paced.
	Rate clone.Rate
	// DryRun reports what the rollback would copy and changes nothing.
	DryRun bool
}

// RollbackReport says what a rollback did, or would do (DryRun).
type RollbackReport struct {
	// Volume is the volume's name; From the step it rolled back from.
	Volume string `json:"volume"`
	From   Step   `json:"from"`
	// DryRun: nothing was changed; WrittenBytes is what the host wrote
	// since cutover, which the first round would copy.
	DryRun       bool   `json:"dryRun,omitempty"`
	WrittenBytes uint64 `json:"writtenBytes,omitempty"`
	// Rounds, Copied, FinalBytes and Held are the rollback's record (see
	// RollbackState).
	Rounds     int      `json:"rounds"`
	Copied     uint64   `json:"copied"`
	FinalBytes uint64   `json:"finalBytes"`
	Held       Duration `json:"held"`
	// Message is the plain statement for the admin.
	Message string `json:"message"`
}

// Rollback copies back to the old LUN every block the host wrote since
// cutover and swaps the volume's device live to linear over the old LUN
// (see the top of this file). A rerun resumes an interrupted rollback.
// It is refused (a *StepError) before cutover, in an online cutover's
// pass-through (cutting over), from finalizing and from handover on,
// without an era layer and, before finalize, when the clone's region size
// is not a multiple of the era block size.
func (p *Planner) Rollback(ctx context.Context, name string, o RollbackOptions) (*RollbackReport, error) {
	if o.DryRun {
		return p.rollbackDry(ctx, name)
	}
	if p.o.Ports.OldWriter == nil {
		return nil, fmt.Errorf("plan: volume %s: rollback is not available here (no writer for the old LUN)", name)
	}
	v, err := p.guarded(ctx, cmdRollback, name, stepFuncs{
		before: func(v *Volume, _ []*Volume) error {
			if err := p.checkPresent(ctx, v); err != nil {
				return err
			}
			// A rollback killed inside its final round left the device
			// suspended: settle it before anything else.
			if err := p.reconcileDevice(ctx, v); err != nil {
				return err
			}
			if err := p.checkRollback(v); err != nil {
				return err
			}
			if v.Step != StepRollingBack {
				// Saved with the "-ing" step.
				v.Rollback = &RollbackState{From: v.Step, CopiedSince: v.Era.Since}
			}
			p.forget(name)
			return nil
		},
		run: func(v *Volume, _ []*Volume) error { return p.rollback(ctx, v, o.Rate) },
	})
	if err != nil {
		return nil, err
	}
	return rollbackReport(v), nil
}

// checkRollback refuses a rollback the volume cannot have, nothing
// changed.
func (p *Planner) checkRollback(v *Volume) error {
	refuse := func(hint string) error {
		return &StepError{Volume: v.Spec.Name, Step: v.Step, Want: cmdRollback.name, Hint: expand(hint, v)}
	}
	switch {
	case v.trackedEra() == nil:
		return refuse("the volume was cut over without an era layer (before lunferry built one), so the host's writes since cutover are not tracked and cannot be copied back; " +
			"`lunferry migrate abort {volume}` goes back to the old LUN as of cutover (the host's writes since then stay on the new LUN only)")
	case !v.Linear && v.Spec.RegionSectors%v.Era.BlockSectors != 0:
		return refuse(fmt.Sprintf("the clone's region (%d sectors) is not a multiple of the era block (%d sectors): a block the host wrote may span a region never hydrated, whose new LUN copy is not the host's data; "+
			"rollback needs eraBlockSectors to divide regionSectors, which only a new migration can change", v.Spec.RegionSectors, v.Era.BlockSectors))
	case v.OldDisk == nil || v.NewDisk == nil:
		return fmt.Errorf("plan: volume %s: %w: the state records no old or new disk at step %s", v.Spec.Name, ErrStateCorrupt, v.Step)
	}
	return nil
}

// rollback runs the rounds and the final round, as far as the record
// says they are not done yet.
func (p *Planner) rollback(ctx context.Context, v *Volume, rate clone.Rate) error {
	r := v.Rollback
	if r.Swapped {
		return nil // swapped before the crash: only the "-ed" step was left
	}
	name := v.Spec.Name
	if v.Linear {
		if err := p.reattachOld(ctx, v); err != nil {
			return err
		}
	} else if _, me := p.send(ctx, name, []string{dm.MsgDisableHydration}, true); me != nil {
		// Hydration stops: rollback goes the other way, and the run
		// loop leaves a volume rolling back alone.
		return fmt.Errorf("plan: volume %s: disable hydration: %w", name, me.err)
	}
	if rate == clone.Unlimited {
		if t := v.Spec.Throttle.RateAt(p.o.Now()); t != clone.Paused {
			rate = t
		}
	}
	if r.Round > 0 {
		// A rerun: the host wrote on since the last round recorded, for
		// as long as the interruption lasted (a final round that stopped
		// before its swap included), so a round first keeps the hold
		// short.
		r.Final = false
		if err := p.rollbackRound(ctx, v, rate); err != nil {
			return err
		}
	}
	for !roundsDone(r) {
		if err := p.rollbackRound(ctx, v, rate); err != nil {
			return err
		}
	}
	return p.rollbackFinal(ctx, v)
}

// reattachOld attaches the old LUN again for a rollback after finalize,
// which let it go: the pre-rollback hooks map it to the proxy, attach
// checks it is the LUN recorded (WWID and size) and sets its disk
// read-only, and it is fenced again as at cutover.
func (p *Planner) reattachOld(ctx context.Context, v *Volume) error {
	if _, err := p.runHooks(ctx, v, "pre-rollback", v.Spec.Hooks.PreRollback); err != nil {
		return err
	}
	if o := v.object(ObjOldLogin); o == nil || o.Pending {
		p.logf("volume %s: rollback after finalize: attach the old LUN again", v.Spec.Name)
		if err := p.create(ctx, v, ObjOldLogin); err != nil {
			return err
		}
	}
	if o := v.object(ObjFence); o == nil || o.Pending {
		return p.tryFence(ctx, v)
	}
	return nil
}

// roundsDone reports whether what the next round would copy is small
// enough for the final round, which holds the host's I/O.
func roundsDone(r *RollbackState) bool {
	switch {
	case r.Round >= rollbackMaxRounds:
		return true
	case r.Round == 0 || r.RoundEra != 0:
		return false // no round done yet, or one interrupted
	}
	return r.LastRound <= rollbackSmall || (r.LastRound < r.PrevRound && r.LastRound < rollbackShrunk)
}

// rollbackRound copies, from the host's view, the blocks the host wrote
// since CopiedSince. A new era begins first and is recorded before the
// copy: a write during the copy is marked with it, and the next round
// copies it.
func (p *Planner) rollbackRound(ctx context.Context, v *Volume, rate clone.Rate) error {
	r, name := v.Rollback, v.Spec.Name
	era, err := p.o.Ports.Era.Checkpoint(ctx, EraName(name))
	if err != nil {
		return fmt.Errorf("plan: volume %s: era checkpoint: %w", name, err)
	}
	r.Round++
	r.RoundEra = era
	if err := p.save(v); err != nil {
		return err
	}
	crashpoint.Hit("rollback:round")
	written, err := p.writtenSince(ctx, v, r.CopiedSince)
	if err != nil {
		return err
	}
	n, err := p.copyToOld(ctx, v, exportDevice(v), written, rate)
	if err != nil {
		return err
	}
	p.logf("volume %s: rollback round %d: copied %s written since era %d to the old LUN", name, r.Round, Bytes(n), r.CopiedSince)
	r.CopiedSince, r.RoundEra = era, 0
	r.PrevRound, r.LastRound, r.Copied = r.LastRound, n, r.Copied+n
	if err := p.save(v); err != nil {
		return err
	}
	crashpoint.Hit("rollback:copied")
	return nil
}

// rollbackFinal holds the host's I/O at the device below the era layer,
// copies what is left from the new LUN, loads linear over the old LUN and
// resumes. Should a step before the swap fail, the device is resumed with
// its clone table (the host goes on as before) and a rerun does the final
// round again.
func (p *Planner) rollbackFinal(ctx context.Context, v *Volume) (err error) {
	r, name, dev := v.Rollback, v.Spec.Name, DMName(v.Spec.Name)
	if !r.Final {
		r.Final = true
		r.Round++
		if err := p.save(v); err != nil {
			return err
		}
	}
	crashpoint.Hit("rollback:final")
	start := time.Now()
	p.logf("volume %s: rollback final round: suspend %s (the host's I/O waits)", name, dev)
	if err := p.o.Ports.Mapper.Suspend(ctx, dev); err != nil {
		return fmt.Errorf("plan: volume %s: suspend %s: %w", name, dev, err)
	}
	crashpoint.Hit("rollback:suspended")
	// From here on finish even when ctx ends: a device left suspended
	// hangs the host.
	bg := context.WithoutCancel(ctx)
	defer func() {
		if err != nil && !r.Swapped {
			if rerr := p.resumeUnswapped(bg, v); rerr != nil {
				err = errors.Join(err, fmt.Errorf("plan: volume %s: %s is left SUSPENDED (the host's I/O waits): resume it (dmsetup resume %s) or rerun rollback: %w", name, dev, dev, rerr))
			}
		}
	}()
	written, err := p.writtenSince(bg, v, r.CopiedSince)
	if err != nil {
		return err
	}
	n, err := p.copyToOld(bg, v, v.NewDisk.Path, written, clone.Unlimited)
	if err != nil {
		return err
	}
	crashpoint.Hit("rollback:final-copied")
	if err := p.o.Ports.Fencer.SetReadWrite(bg, v.OldDisk.Path); err != nil {
		return fmt.Errorf("plan: volume %s: set old LUN %s read-write for the host's writes: %w", name, v.OldDisk.Path, err)
	}
	line := LinearLine(v.SizeSectors, v.OldDisk.Path)
	p.logf("volume %s: load %s: %s", name, dev, line)
	if err := p.o.Ports.Mapper.Load(bg, dev, line); err != nil {
		return fmt.Errorf("plan: volume %s: load linear over the old LUN into %s: %w", name, dev, err)
	}
	crashpoint.Hit("rollback:loaded")
	// Recorded before the resume makes it live: restore must never
	// rebuild the clone once the host may have written the old LUN only.
	// The copy is counted with the swap: a rollback interrupted before
	// its resume reports it too.
	r.Swapped, r.FinalBytes, r.Copied = true, n, r.Copied+n
	if err := p.save(v); err != nil {
		r.Swapped, r.Copied = false, r.Copied-n
		return err
	}
	crashpoint.Hit("rollback:swapped")
	if err := p.o.Ports.Mapper.Resume(bg, dev); err != nil {
		return fmt.Errorf("plan: volume %s: resume %s with linear over the old LUN loaded (the host's I/O waits): rerun rollback, which resumes it: %w", name, dev, err)
	}
	held := time.Since(start)
	r.Held = Duration(held)
	p.logf("volume %s: rolled back: copied %s in the final round; the host's I/O was held for %s", name, Bytes(n), held.Round(time.Millisecond))
	return p.save(v)
}

// resumeUnswapped resumes the device of a rollback whose final round
// stopped before its swap, with the table it still has (the clone, or
// linear over the new LUN after finalize; a table loaded inactive is
// dropped first), the old LUN's disk read-only again.
func (p *Planner) resumeUnswapped(ctx context.Context, v *Volume) error {
	dev := DMName(v.Spec.Name)
	if err := p.o.Ports.Mapper.ClearInactive(ctx, dev); err != nil {
		return fmt.Errorf("clear the inactive table of %s: %w", dev, err)
	}
	if err := p.o.Ports.Initiator.SetReadOnly(ctx, v.OldDisk.Path); err != nil {
		return fmt.Errorf("set old LUN %s read-only again: %w", v.OldDisk.Path, err)
	}
	return p.o.Ports.Mapper.Resume(ctx, dev)
}

// writtenSince returns the byte ranges of the blocks the host wrote in
// era since or later, clipped to the volume.
func (p *Planner) writtenSince(ctx context.Context, v *Volume, since uint32) ([]clone.Extent, error) {
	w, err := p.o.Ports.Era.WrittenSince(ctx, EraName(v.Spec.Name), v.Era.MetadataDevice, since)
	if err != nil {
		return nil, fmt.Errorf("plan: volume %s: read the host's writes since era %d: %w", v.Spec.Name, since, err)
	}
	return clip(w, v.SizeSectors*512), nil
}

// copyToOld copies extents from src to the old LUN. It is the only place
// lunferry writes to the old LUN: rollback's copies, through the
// OldWriter port, which makes the disk writable for the copy alone.
func (p *Planner) copyToOld(ctx context.Context, v *Volume, src string, extents []clone.Extent, rate clone.Rate) (uint64, error) {
	n, err := p.o.Ports.OldWriter.CopyBack(ctx, src, v.OldDisk.Path, extents, rate)
	if err != nil {
		return n, fmt.Errorf("plan: volume %s: copy the host's writes from %s to the old LUN %s: %w", v.Spec.Name, src, v.OldDisk.Path, err)
	}
	return n, nil
}

// rollbackDry reports what a rollback would copy; nothing is changed
// beyond the era device's metadata snapshot, which verify takes too.
func (p *Planner) rollbackDry(ctx context.Context, name string) (*RollbackReport, error) {
	dry := *cmdRollback
	dry.trying, dry.done, dry.inhibit = "", "", false
	rep := &RollbackReport{Volume: name, DryRun: true}
	_, err := p.guarded(ctx, &dry, name, stepFuncs{run: func(v *Volume, _ []*Volume) error {
		if err := p.checkPresent(ctx, v); err != nil {
			return err
		}
		if err := p.checkRollback(v); err != nil {
			return err
		}
		since, from := v.Era.Since, v.Step
		if r := v.Rollback; r != nil {
			since, from = r.CopiedSince, r.From
			rep.Rounds, rep.Copied = r.Round, r.Copied
		}
		rep.From = from
		written, err := p.writtenSince(ctx, v, since)
		if err != nil {
			return err
		}
		for _, x := range written {
			rep.WrittenBytes += x.Length
		}
		pre := "hydration stops"
		if v.Linear {
			pre = "the pre-rollback hooks run, the old LUN is attached again (its WWID and size checked) and fenced"
		}
		rep.Message = fmt.Sprintf("dry run: volume %s would be rolled back from %s: %s; rounds copy %s the host wrote since era %d (and what it writes meanwhile) from %s to the old LUN %s, until a round copies at most %s (at most %d rounds); "+
			"then %s is suspended, the rest copied from the new LUN %s, and %s swapped live to: %s; nothing was changed",
			name, from, pre, Bytes(rep.WrittenBytes), since, exportDevice(v), v.OldDisk.Path, Bytes(rollbackSmall), rollbackMaxRounds,
			DMName(name), v.NewDisk.Path, DMName(name), LinearLine(v.SizeSectors, v.OldDisk.Path))
		return nil
	}})
	if err != nil {
		return nil, err
	}
	if rep.Message == "" {
		rep.Message = fmt.Sprintf("dry run: volume %s is already rolled back; nothing to do", name)
	}
	return rep, nil
}

func rollbackReport(v *Volume) *RollbackReport {
	r := v.Rollback
	rep := &RollbackReport{Volume: v.Spec.Name}
	if r != nil {
		rep.From, rep.Rounds, rep.Copied, rep.FinalBytes, rep.Held = r.From, r.Round, r.Copied, r.FinalBytes, r.Held
	}
	held := "host I/O held " + rep.Held.D().Round(time.Millisecond).String() + " in the final round"
	if rep.Held == 0 {
		// The final round was interrupted after its swap was recorded
		// (the hold ended with the process, or the power).
		held = "the final round's hold on the host's I/O not measured: it was interrupted after the swap"
	}
	rep.Message = fmt.Sprintf("volume %s rolled back: %s now runs linear over the old LUN %s lun %d, which holds every write of the host (%d rounds, %s copied, %s); "+
		"`lunferry migrate abort %s` ends the migration on the old array with nothing lost",
		v.Spec.Name, DMName(v.Spec.Name), v.Spec.Old.IQN, v.Spec.Old.LUN, rep.Rounds, Bytes(rep.Copied), held, v.Spec.Name)
	return rep
}
