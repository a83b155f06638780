package plan

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lunferry/lunferry/dm"
)

// Cutover moves the host onto the proxy: pre-cutover hooks, old LUN
// attached read-only (and fenced where the array allows), clone device
// built with hydration off, exported to the host's IQN only, post-cutover
// hooks, then it waits for the host's session. The returned volume's Window
// says how long the tool itself spent in the host window. A runbook with
// "cutover": "online" runs the online cutover instead (see plan/online.go).
func (p *Planner) Cutover(ctx context.Context, name string) (*Volume, error) {
	return p.CutoverWith(ctx, name, CutoverOptions{})
}

// CutoverOptions override the runbook for one run of cutover.
type CutoverOptions struct {
	// Online runs the online cutover (`migrate cutover --online`).
	Online bool
	// NoFence takes no reservation on the old LUN (`--no-fence`).
	NoFence bool
}

// CutoverWith is Cutover with o overriding the runbook. The mode is fixed
// at the first run and recorded: a rerun goes on the same way (it may only
// turn the fence off, for an array that refused it).
func (p *Planner) CutoverWith(ctx context.Context, name string, o CutoverOptions) (*Volume, error) {
	return p.guarded(ctx, cmdCutover, name, stepFuncs{
		before: func(v *Volume, all []*Volume) error {
			if err := p.chooseMode(v, o); err != nil {
				return err
			}
			// Everything that can be refused is refused before the first
			// hook quiesces the host.
			if err := p.preflight(ctx, v, all); err != nil {
				return err
			}
			return p.checkPresent(ctx, v)
		},
		run: func(v *Volume, _ []*Volume) error {
			if v.Cutover.Online {
				return p.onlineCutover(ctx, v)
			}
			return p.cutover(ctx, v)
		},
	})
}

// chooseMode records the cutover's mode at its first run, from o and the
// runbook; an online one needs the hooks that move the host's paths.
func (p *Planner) chooseMode(v *Volume, o CutoverOptions) error {
	m, first := v.mode(), v.Step == StepPrepared
	if first {
		m.Online = o.Online || v.Spec.Cutover == "online"
		m.NoFence = o.NoFence || v.Spec.Fence == "none"
	} else if o.Online && !m.Online {
		p.logf("volume %s: note: this cutover began offline and goes on offline (--online ignored)", v.Spec.Name)
	}
	if o.NoFence && !m.NoFence && v.object(ObjFence) == nil {
		m.NoFence = true
	}
	h := v.Spec.Hooks
	if m.Online && (len(h.AddPaths) == 0 || len(h.RemoveDirectPaths) == 0 || len(h.RestoreDirectPaths) == 0) {
		if first {
			v.Cutover = nil
		}
		return fmt.Errorf("plan: volume %s: %w: the online cutover needs hooks addPaths, removeDirectPaths and restoreDirectPaths (they move the host's multipath paths): add them to the runbook, or cut over offline",
			v.Spec.Name, ErrInvalidSpec)
	}
	return nil
}

func (p *Planner) cutover(ctx context.Context, v *Volume) error {
	s := &v.Spec
	w := p.window(v)
	d, err := p.runHooks(ctx, v, "pre-cutover", s.Hooks.PreCutover)
	w.Hooks += Duration(d)
	if err != nil {
		return err
	}
	t0 := p.o.Now()
	if err := p.serveFromProxy(ctx, v); err != nil {
		return err
	}
	w.Tool += Duration(p.o.Now().Sub(t0))
	if err := p.save(v); err != nil {
		return err
	}
	d, err = p.runHooks(ctx, v, "post-cutover", s.Hooks.PostCutover)
	w.Hooks += Duration(d)
	if err != nil {
		return err
	}
	waitStart := p.o.Now()
	if err := p.waitSession(ctx, v); err != nil {
		return err
	}
	end := p.o.Now()
	w.SessionWait = Duration(end.Sub(waitStart))
	w.Total = Duration(end.Sub(v.WindowStart))
	v.CutOverAt = end.UTC()
	p.logf("volume %s: cut over; tool time in window %s (hooks %s, session wait %s, total %s)", s.Name,
		w.Tool.D().Round(time.Millisecond), w.Hooks.D().Round(time.Millisecond), w.SessionWait.D().Round(time.Millisecond),
		w.Total.D().Round(time.Millisecond))
	return nil
}

// window returns the cutover's timing. The times add up over the attempts
// of an interrupted, resumed cutover; Total runs from the first attempt.
func (p *Planner) window(v *Volume) *WindowTimes {
	if v.Window == nil || v.WindowStart.IsZero() {
		v.Window, v.WindowStart = &WindowTimes{}, p.o.Now().UTC()
	}
	return v.Window
}

// serveFromProxy is the tool's part of the window: attach the old LUN
// read-only, check its size, build the clone and export it.
func (p *Planner) serveFromProxy(ctx context.Context, v *Volume) error {
	if err := p.create(ctx, v, ObjOldLogin); err != nil {
		return err
	}
	if err := p.checkOldSize(v); err != nil {
		return err
	}
	v.SizeSectors = v.OldDisk.SizeBytes / 512
	if err := p.tryFence(ctx, v); err != nil {
		return err
	}
	return p.buildStack(ctx, v)
}

// buildStack builds the volume's device, skips hydrating what the old
// LUN reports unmapped (offline cutover), builds the era layer over it
// (for a volume not exported before lunferry built them) and the export.
func (p *Planner) buildStack(ctx context.Context, v *Volume) error {
	if err := p.create(ctx, v, ObjDevice); err != nil {
		return err
	}
	// Before anything can write through the clone (see thin.go).
	if err := p.skipUnmapped(ctx, v); err != nil {
		return err
	}
	if p.wantsEra(v) {
		if err := p.create(ctx, v, ObjEra); err != nil {
			return err
		}
	}
	return p.create(ctx, v, ObjExport)
}

// checkOldSize checks the attached old LUN against the spec's size, the
// size seen at prepare and the new LUN. A dry run, which finds no disk,
// takes the size from the spec or from prepare.
func (p *Planner) checkOldSize(v *Volume) error {
	s := &v.Spec
	if p.o.DryRun && v.OldDisk.SizeBytes == 0 {
		p.logf("volume %s: dry run: LUN sizes unknown, size checks skipped", s.Name)
		v.OldDisk.SizeBytes = uint64(s.Old.SizeBytes)
		if v.OldDisk.SizeBytes == 0 {
			v.OldDisk.SizeBytes = v.SizeSectors * 512
		}
	}
	if s.Old.SizeBytes != 0 && v.OldDisk.SizeBytes != uint64(s.Old.SizeBytes) {
		return fmt.Errorf("plan: volume %s: %w: the old LUN is %d bytes but old.sizeBytes says %d: check that the right LUN was mapped to the proxy, then fix the spec or abort",
			s.Name, ErrSizeMismatch, v.OldDisk.SizeBytes, uint64(s.Old.SizeBytes))
	}
	if v.SizeSectors != 0 && v.OldDisk.SizeBytes != v.SizeSectors*512 {
		return fmt.Errorf("plan: volume %s: %w: the old LUN is %d bytes now, %d at prepare: check the mapping on the old array, or abort",
			s.Name, ErrSizeMismatch, v.OldDisk.SizeBytes, v.SizeSectors*512)
	}
	return checkSizes(v, v.OldDisk.SizeBytes)
}

// cloneOf is the volume's clone target over metadata device meta: the old
// LUN copied onto the new one, background hydration off until start.
func cloneOf(v *Volume, meta string) dm.Clone {
	return dm.Clone{Metadata: meta, Destination: v.NewDisk.Path, Source: v.OldDisk.Path,
		RegionSize: dm.Sectors(v.Spec.RegionSectors), NoHydration: true}
}

// waitSession polls the export's sessions until the host's IQN appears.
func (p *Planner) waitSession(ctx context.Context, v *Volume) error {
	timeout := sessionTimeout(v)
	if p.o.DryRun {
		p.logf("volume %s: would wait up to %s for %s to log in to %s", v.Spec.Name, timeout, v.Spec.HostIQN, v.Spec.Export.IQN)
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		sess, err := p.o.Ports.Exporter.Sessions(ctx, v.Spec.Export.IQN)
		if err != nil {
			return fmt.Errorf("plan: volume %s: read sessions of %s: %w", v.Spec.Name, v.Spec.Export.IQN, err)
		}
		if slices.Contains(sess, v.Spec.HostIQN) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("plan: volume %s: %w: %s did not log in to %s within %s (sessions: %v): log the host in (post-cutover hook), then rerun `lunferry migrate cutover %s`, or abort",
				v.Spec.Name, ErrSessionTimeout, v.Spec.HostIQN, v.Spec.Export.IQN, timeout, sess, v.Spec.Name)
		}
		if err := p.sleep(ctx); err != nil {
			return err
		}
	}
}

// sleep waits one poll interval, or returns ctx's error.
func (p *Planner) sleep(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(p.o.PollInterval):
		return nil
	}
}
