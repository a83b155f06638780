package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lunferry/lunferry/internal/crashpoint"
)

// The online cutover (runbook "cutover": "online", or `migrate cutover
// --online`) moves a multipath host onto the proxy without stopping it,
// through five phases, each saved once done (Volume.Cutover.Phase):
//
//	passthrough     the old LUN attached read-write, linear over it,
//	                exported with the old LUN's identity to the host
//	paths-added     addPaths hooks ran, the host's session is on the
//	                export, checkPaths hooks passed
//	direct-removed  removeDirectPaths hooks ran: only the proxy's paths
//	                reach the old LUN
//	fenced          the proxy's key holds Write Exclusive - Registrants
//	                Only on the old LUN (skipped with fence none)
//	taken-over      the old LUN's disk read-only, the table swapped live
//	                from linear(old) to clone(new, old), hydration off
//
// Until taken-over the host's writes go to the old LUN through the linear
// table: lunferry itself never writes it, and abort backs out
// (restoreDirectPaths hooks, then the proxy's objects go). The export does
// not cache: LIO's iblock backend submits bios straight to the dm device
// (no page cache); it reports the write cache of its backing queue (its
// attribute emulate_write_cache is refused for iblock, and lio sets it for
// fileio only), which the linear table inherits from the old LUN's disk;
// emulate_fua_write stays at its default 1, so the host's FUA writes and
// SYNCHRONIZE CACHE reach the old LUN as REQ_FUA and flush bios, which
// dm linear passes on. The host's multipath map takes write back and FUA
// from any of its paths, so the proxied path shows what the direct one
// does: the old LUN must report write back (checkOldCache; the clone it
// becomes always does, and the host must keep sending the flushes on which
// dm-clone commits its metadata), and the export offers FUA only when the
// old LUN does (ExportSpec.NoFUA).

// OnlinePhase is a phase of the online cutover.
type OnlinePhase string

// The online phases, in order.
const (
	PhasePassthrough   OnlinePhase = "passthrough"
	PhasePathsAdded    OnlinePhase = "paths-added"
	PhaseDirectRemoved OnlinePhase = "direct-removed"
	PhaseFenced        OnlinePhase = "fenced"
	PhaseTakenOver     OnlinePhase = "taken-over"
)

// onlinePhase is one row of the phase table: the phase, and what serves
// the host once it is done. What each phase does is a method of Planner
// (see phaseRuns).
type onlinePhase struct {
	name    OnlinePhase
	serving string
}

var onlinePhases = []onlinePhase{
	{PhasePassthrough, "old array (direct paths; the proxy's linear over the old LUN is exported)"},
	{PhasePathsAdded, "old array, through direct paths and the proxy (linear over the old LUN)"},
	{PhaseDirectRemoved, "proxy (linear over the old LUN)"},
	{PhaseFenced, "proxy (linear over the old LUN, fenced)"},
	{PhaseTakenOver, "proxy (clone)"},
}

// phaseRuns maps each phase to its method (not in the table: the methods
// reach the object operations, which ask for the phase).
func (p *Planner) phaseRuns() map[OnlinePhase]func(context.Context, *Volume) error {
	return map[OnlinePhase]func(context.Context, *Volume) error{
		PhasePassthrough: p.passthrough, PhasePathsAdded: p.addPaths, PhaseDirectRemoved: p.removeDirectPaths,
		PhaseFenced: p.fenceOld, PhaseTakenOver: p.takeOver,
	}
}

// phaseIndex is the position of ph in onlinePhases, -1 for "" (none done).
func phaseIndex(ph OnlinePhase) int {
	return slices.IndexFunc(onlinePhases, func(o onlinePhase) bool { return o.name == ph })
}

// passthrough reports whether v's device runs, or must run, linear over
// the old LUN: an online cutover before its takeover.
func (v *Volume) passthrough() bool {
	return v.Cutover != nil && v.Cutover.Online && phaseIndex(v.Cutover.Phase) < phaseIndex(PhaseTakenOver)
}

// onlineCutover runs the phases not yet done, saving each.
func (p *Planner) onlineCutover(ctx context.Context, v *Volume) error {
	m, runs := v.mode(), p.phaseRuns()
	for _, ph := range onlinePhases[phaseIndex(m.Phase)+1:] {
		p.logf("volume %s: online cutover: %s", v.Spec.Name, ph.name)
		if err := runs[ph.name](ctx, v); err != nil {
			return err
		}
		m.Phase = ph.name
		if err := p.save(v); err != nil {
			return err
		}
		crashpoint.Hit("online:" + string(ph.name))
	}
	v.CutOverAt = p.o.Now().UTC()
	p.logf("volume %s: cut over online; the takeover held the host's I/O for %s", v.Spec.Name, m.TakeoverHeld.D().Round(time.Millisecond))
	return nil
}

// passthrough attaches the old LUN read-write, builds linear over it and
// exports it with the old LUN's identity.
func (p *Planner) passthrough(ctx context.Context, v *Volume) error {
	if err := p.create(ctx, v, ObjOldLogin); err != nil {
		return err
	}
	if err := p.checkOldSize(v); err != nil {
		return err
	}
	if err := p.checkOldCache(v); err != nil {
		return err
	}
	v.SizeSectors = v.OldDisk.SizeBytes / 512
	return p.buildStack(ctx, v)
}

// checkOldCache refuses an old LUN that reports a write-through cache. The
// host's multipath map takes write back and FUA from any of its paths: the
// proxied path must show what the direct one does (the export's FUA
// follows the old LUN's, see exportSpec), and its write cache is the
// linear device's, which must already be write back to stay so through the
// takeover, where the host must go on sending the flushes on which
// dm-clone commits its record of the host's writes.
func (p *Planner) checkOldCache(v *Volume) error {
	if p.o.DryRun || v.OldDisk.WriteBack {
		return nil
	}
	return fmt.Errorf("plan: volume %s: %w (WCE=0): through the online cutover the host would see write back on the proxy's paths and write through on the direct ones, and after the takeover it would stop sending the cache flushes the clone needs; "+
		"turn the old LUN's write cache on at the array and rerun, or cut over offline (abort, prepare again, then `lunferry migrate cutover %s` without --online)",
		v.Spec.Name, ErrWriteThrough, v.Spec.Name)
}

// addPaths runs the addPaths hooks, waits for the host's session and for
// the checkPaths hooks to pass.
func (p *Planner) addPaths(ctx context.Context, v *Volume) error {
	if _, err := p.runHooks(ctx, v, "add-paths", v.Spec.Hooks.AddPaths); err != nil {
		return err
	}
	if err := p.waitSession(ctx, v); err != nil {
		return err
	}
	deadline := time.Now().Add(sessionTimeout(v))
	for {
		_, err := p.runHooks(ctx, v, "check-paths", v.Spec.Hooks.CheckPaths)
		if err == nil || !errors.Is(err, ErrHook) || time.Now().After(deadline) {
			return err
		}
		if err := p.sleep(ctx); err != nil {
			return err
		}
	}
}

func (p *Planner) removeDirectPaths(ctx context.Context, v *Volume) error {
	_, err := p.runHooks(ctx, v, "remove-direct-paths", v.Spec.Hooks.RemoveDirectPaths)
	return err
}

// fenceOld takes the fence; an array that refuses it refuses the online
// cutover, unless the fence is off.
func (p *Planner) fenceOld(ctx context.Context, v *Volume) error {
	if v.mode().NoFence {
		p.logf("volume %s: fence none: the old LUN is not reserved", v.Spec.Name)
		return nil
	}
	err := p.create(ctx, v, ObjFence)
	if errors.Is(err, ErrFenceRefused) {
		if perr := p.pop(v, ObjFence); perr != nil {
			return errors.Join(err, perr)
		}
		return fmt.Errorf("%w: the online cutover fences the old LUN before it takes over, so that a direct path the hooks missed cannot write it: "+
			"rerun with `lunferry migrate cutover --online --no-fence %s` (or give \"fence\": \"none\" in the runbook) to go on without it, or abort to back out",
			err, v.Spec.Name)
	}
	return err
}

// takeOver sets the old LUN's disk read-only and swaps the device live to
// the clone (hydration off), unless an interrupted takeover already did.
func (p *Planner) takeOver(ctx context.Context, v *Volume) error {
	if err := p.o.Ports.Initiator.SetReadOnly(ctx, v.OldDisk.Path); err != nil {
		return fmt.Errorf("plan: volume %s: set old LUN %s read-only: %w", v.Spec.Name, v.OldDisk.Path, err)
	}
	if err := p.reconcileDevice(ctx, v); err != nil {
		return err
	}
	if v.Cutover.Phase == PhaseTakenOver {
		return nil // the swap was done; reconcileDevice recorded it
	}
	meta := v.object(ObjMetadata)
	if meta == nil || meta.Device == "" {
		return fmt.Errorf("plan: volume %s: no metadata device recorded: abort and prepare again", v.Spec.Name)
	}
	if v.hasEraLayer() {
		// Before the swap: the era then begun marks every write that
		// reaches the new LUN only.
		if err := p.eraCheckpoint(ctx, v); err != nil {
			return err
		}
	}
	name, line := DMName(v.Spec.Name), CloneLine(v.SizeSectors, cloneOf(v, meta.Device))
	p.logf("volume %s: swap %s live to: %s", v.Spec.Name, name, line)
	held, err := p.o.Ports.Mapper.Swap(ctx, name, line)
	if err != nil {
		return fmt.Errorf("plan: volume %s: swap %s to the clone: %w", v.Spec.Name, name, err)
	}
	p.logf("volume %s: taken over; I/O held for %s", v.Spec.Name, held.Round(time.Millisecond))
	v.Cutover.TakeoverHeld, v.Exported = Duration(held), true
	return nil
}

// onlineInfo adjusts the step table's entry of a volume cutting over (or
// backing out) online, by phase.
func (v *Volume) onlineInfo(i *stepInfo) {
	i.serving = "old array (the export is being built)"
	if k := phaseIndex(v.Cutover.Phase); k >= 0 {
		i.serving = onlinePhases[k].serving
	}
	next := "the step's end"
	if k := phaseIndex(v.Cutover.Phase) + 1; k < len(onlinePhases) {
		next = string(onlinePhases[k].name)
	}
	i.hint = fmt.Sprintf("the online cutover stopped after phase %s (next: %s): rerun `lunferry migrate cutover {volume}` to go on, or `lunferry migrate abort {volume}` to back out (restoreDirectPaths hooks)",
		orNone(v.Cutover.Phase), next)
}

func orNone(ph OnlinePhase) string {
	if ph == "" {
		return "none"
	}
	return string(ph)
}

// sessionTimeout is the volume's wait for the host's session.
func sessionTimeout(v *Volume) time.Duration {
	if t := v.Spec.SessionTimeout.D(); t > 0 {
		return t
	}
	return DefaultSessionTimeout
}
