package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
)

// Prepare attaches the new LUN, checks it is at least as large as the old
// one and creates the clone metadata device. The host stays on the old
// array; nothing is written to the old LUN. The old LUN's size comes from
// the spec (old.sizeBytes) or, when not given, from attaching the old LUN
// read-only.
func (p *Planner) Prepare(ctx context.Context, name string) (*Volume, error) {
	var v *Volume
	err := p.locked(ctx, func() error {
		var all []*Volume
		var err error
		v, all, err = p.load(name)
		if err != nil {
			return err
		}
		switch v.Step {
		case StepNew, StepPreparing:
		case StepPrepared:
			p.logf("volume %s already prepared", name)
			return nil
		default:
			return &StepError{Volume: name, Step: v.Step, Want: "prepare", Hint: "it is past prepare; see `lunferry migrate status`"}
		}
		if err := checkConflicts(&v.Spec, others(all, name)); err != nil {
			return err
		}
		if err := p.checkHooks(&v.Spec); err != nil {
			return err
		}
		if err := p.checkStrays(ctx, v); err != nil {
			return err
		}
		return p.transition(ctx, v, StepPreparing, StepPrepared, func() error {
			return p.prepare(ctx, v)
		})
	})
	return v, err
}

// checkHooks finds, before the window, hooks that are missing or not
// executable.
func (p *Planner) checkHooks(s *Spec) error {
	h := s.Hooks
	return p.checkHookList(s, h.PreCutover, h.PostCutover, h.PreFinalize, h.PostFinalize, h.PreAbort, h.PostAbort,
		h.PreHandover, h.PostHandover)
}

// checkHookList finds hooks of the given phases that are missing or not
// executable.
func (p *Planner) checkHookList(s *Spec, lists ...[]string) error {
	for _, list := range lists {
		for _, path := range list {
			if err := p.o.Ports.Hooks.Check(path); err != nil {
				return fmt.Errorf("plan: volume %s: %w: hook %s: %v: fix the volume's hooks before the window", s.Name, ErrInvalidSpec, path, err)
			}
		}
	}
	return nil
}

func others(all []*Volume, name string) []*Volume {
	var out []*Volume
	for _, v := range all {
		if v.Spec.Name != name {
			out = append(out, v)
		}
	}
	return out
}

func (p *Planner) prepare(ctx context.Context, v *Volume) error {
	s := &v.Spec
	if SameLU(s.Old, s.New) {
		return fmt.Errorf("plan: volume %s: %w: old and new both name LUN %d of target %s (portals %s and %s reach the same device): give the new array's LUN as new",
			s.Name, ErrSameLUN, s.Old.LUN, s.Old.IQN, s.Old.Portal, s.New.Portal)
	}
	if err := p.attach(ctx, v, ObjNewLogin, s.New, false); err != nil {
		return err
	}
	oldSize := uint64(s.Old.SizeBytes)
	if oldSize == 0 {
		p.logf("volume %s: old.sizeBytes not given: attaching the old LUN read-only to read its size", s.Name)
		if err := p.attach(ctx, v, ObjOldLogin, s.Old, true); err != nil {
			return fmt.Errorf("%w (or give the old LUN's size as old.sizeBytes / --old-size if it is mapped to the proxy only at cutover)", err)
		}
		oldSize = v.OldDisk.SizeBytes
	}
	if p.o.DryRun && (oldSize == 0 || v.NewDisk.SizeBytes == 0) {
		p.logf("volume %s: dry run: LUN sizes unknown, size checks skipped", s.Name)
	} else if err := checkSizes(v, oldSize); err != nil {
		return err
	}
	v.SizeSectors = oldSize / 512
	if dev := s.Metadata.Device; dev != "" {
		if _, err := p.push(v, ObjMetadata, dev); err != nil {
			return err
		}
		p.logf("volume %s: zeroing the first 4 KiB of metadata device %s", s.Name, dev)
		if err := p.o.Ports.Metadata.ZeroDevice(ctx, dev, MinMetadataBytes(v.NewDisk.SizeBytes, s.RegionSectors)); err != nil {
			return fmt.Errorf("plan: volume %s: zero metadata device %s: %w", s.Name, dev, err)
		}
		return p.created(v, ObjMetadata, dev)
	}
	path := p.metadataPath(s.Name)
	size := MetadataBytes(v.NewDisk.SizeBytes, s.RegionSectors)
	v.MetadataFile, v.MetadataBytes = path, size
	if _, err := p.push(v, ObjMetadata, path); err != nil {
		return err
	}
	p.logf("volume %s: metadata %s (%s) on a loop device", s.Name, path, Bytes(size))
	dev, err := p.o.Ports.Metadata.CreateFile(ctx, path, size, true)
	if err != nil {
		return fmt.Errorf("plan: volume %s: create metadata device %s: %w", s.Name, path, err)
	}
	return p.created(v, ObjMetadata, dev)
}

// checkSizes refuses a new LUN smaller than oldSize and the same disk as
// old and new.
func checkSizes(v *Volume, oldSize uint64) error {
	s := &v.Spec
	if oldSize%512 != 0 {
		return fmt.Errorf("plan: volume %s: %w: old LUN size %d bytes is not a whole number of 512-byte sectors", s.Name, ErrSizeMismatch, oldSize)
	}
	if v.NewDisk != nil && v.OldDisk != nil {
		if v.NewDisk.Path == v.OldDisk.Path || (v.NewDisk.ID != "" && v.NewDisk.ID == v.OldDisk.ID) {
			return fmt.Errorf("plan: volume %s: %w: %s and %s are both %s (id %q): check the new LUN's portal, IQN and LUN number",
				s.Name, ErrSameLUN, s.Old.IQN, s.New.IQN, v.NewDisk.Path, v.NewDisk.ID)
		}
	}
	if v.NewDisk != nil && v.NewDisk.SizeBytes < oldSize {
		return fmt.Errorf("plan: volume %s: %w: new LUN (%s lun %d) is %d bytes (%s), smaller than the old LUN's %d bytes (%s): give a new LUN of at least %d bytes",
			s.Name, ErrSizeMismatch, s.New.IQN, s.New.LUN, v.NewDisk.SizeBytes, Bytes(v.NewDisk.SizeBytes), oldSize, Bytes(oldSize), oldSize)
	}
	return nil
}

// attach logs in to l's target, finds its disk and records it in v (as the
// old or new disk); readOnly also sets the disk read-only.
func (p *Planner) attach(ctx context.Context, v *Volume, kind ObjectKind, l LUN, readOnly bool) error {
	t := targetOf(l)
	if _, err := p.push(v, kind, t.String()); err != nil {
		return err
	}
	which := "new"
	if kind == ObjOldLogin {
		which = "old"
	}
	p.logf("volume %s: log in to the %s LUN's target %s", v.Spec.Name, which, t)
	if err := p.o.Ports.Initiator.Login(ctx, t); err != nil {
		return fmt.Errorf("plan: volume %s: log in to %s LUN target %s: %w", v.Spec.Name, which, t, err)
	}
	d, err := p.o.Ports.Initiator.FindDisk(ctx, t, l.LUN)
	if err != nil {
		return fmt.Errorf("plan: volume %s: find %s LUN %d behind %s: %w (is the LUN mapped to this proxy's initiator?)", v.Spec.Name, which, l.LUN, t, err)
	}
	if readOnly {
		if err := p.o.Ports.Initiator.SetReadOnly(ctx, d.Path); err != nil {
			return fmt.Errorf("plan: volume %s: set old LUN %s read-only: %w", v.Spec.Name, d.Path, err)
		}
	}
	if kind == ObjOldLogin {
		v.OldDisk = &d
	} else {
		v.NewDisk = &d
	}
	return p.created(v, kind, d.Path)
}

// checkStrays refuses to go on when a kernel object with this volume's
// names exists but the volume's state does not record it.
func (p *Planner) checkStrays(ctx context.Context, v *Volume) error {
	name := DMName(v.Spec.Name)
	if _, ok, err := p.o.Ports.Mapper.Lookup(ctx, name); err != nil {
		return fmt.Errorf("plan: look up device %s: %w", name, err)
	} else if ok && v.object(ObjDevice) == nil {
		return fmt.Errorf("plan: volume %s: %w: device-mapper device %s exists but this state did not create it: lunferry will neither adopt nor delete it; inspect it (dmsetup table %s) and remove it yourself if it is a leftover",
			v.Spec.Name, ErrUnknownObject, name, name)
	}
	iqn := v.Spec.Export.IQN
	if ok, err := p.o.Ports.Exporter.Lookup(ctx, iqn); err != nil {
		return fmt.Errorf("plan: look up target %s: %w", iqn, err)
	} else if ok && v.object(ObjExport) == nil {
		return fmt.Errorf("plan: volume %s: %w: LIO target %s exists but this state did not create it: lunferry will neither adopt nor delete it; inspect it (targetcli ls) and remove it yourself, or choose another export IQN",
			v.Spec.Name, ErrUnknownObject, iqn)
	}
	return nil
}

// Cutover moves the host onto the proxy: pre-cutover hooks, old LUN
// attached read-only, clone device built with hydration off, exported to
// the host's IQN only, post-cutover hooks, then it waits for the host's
// session. The returned volume's Window says how long the tool itself spent
// in the host window.
func (p *Planner) Cutover(ctx context.Context, name string) (*Volume, error) {
	var v *Volume
	err := p.locked(ctx, func() error {
		var all []*Volume
		var err error
		v, all, err = p.load(name)
		if err != nil {
			return err
		}
		switch v.Step {
		case StepPrepared, StepCuttingOver:
		case StepCutOver, StepHydrating, StepHydrated:
			p.logf("volume %s already cut over", name)
			return nil
		case StepNew:
			return &StepError{Volume: name, Step: v.Step, Want: "cutover", Hint: fmt.Sprintf("run `lunferry migrate prepare %s` first", name)}
		default:
			return &StepError{Volume: name, Step: v.Step, Want: "cutover"}
		}
		if err := checkConflicts(&v.Spec, others(all, name)); err != nil {
			return err
		}
		if err := p.checkStrays(ctx, v); err != nil {
			return err
		}
		release := p.inhibit("lunferry cutover of " + name)
		defer release()
		return p.transition(ctx, v, StepCuttingOver, StepCutOver, func() error {
			return p.cutover(ctx, v)
		})
	})
	return v, err
}

func (p *Planner) cutover(ctx context.Context, v *Volume) error {
	s := &v.Spec
	// The window's times add up over the attempts of an interrupted,
	// resumed cutover; Total runs from the first attempt.
	if v.Window == nil || v.WindowStart.IsZero() {
		v.Window, v.WindowStart = &WindowTimes{}, p.o.Now().UTC()
	}
	w := v.Window
	d, err := p.runHooks(ctx, v, "pre-cutover", s.Hooks.PreCutover)
	w.Hooks += Duration(d)
	if err != nil {
		return err
	}
	t0 := p.o.Now()
	tool := func() { w.Tool += Duration(p.o.Now().Sub(t0)); t0 = p.o.Now() }
	if err := p.attach(ctx, v, ObjOldLogin, s.Old, true); err != nil {
		return err
	}
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
	if err := checkSizes(v, v.OldDisk.SizeBytes); err != nil {
		return err
	}
	v.SizeSectors = v.OldDisk.SizeBytes / 512
	dev, err := p.ensureDevice(ctx, v)
	if err != nil {
		return err
	}
	if err := p.ensureExport(ctx, v, dev); err != nil {
		return err
	}
	tool()
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

// ensureDevice creates the clone device (hydration off) or, after
// finalize, the linear device, and returns its node.
func (p *Planner) ensureDevice(ctx context.Context, v *Volume) (string, error) {
	name := DMName(v.Spec.Name)
	if _, err := p.push(v, ObjDevice, name); err != nil {
		return "", err
	}
	if dev, ok, err := p.o.Ports.Mapper.Lookup(ctx, name); err != nil {
		return "", fmt.Errorf("plan: look up device %s: %w", name, err)
	} else if ok {
		return dev, p.created(v, ObjDevice, dev)
	}
	var dev string
	var err error
	if v.Linear {
		p.logf("volume %s: create %s: %s", v.Spec.Name, name, LinearLine(v.SizeSectors, v.NewDisk.Path))
		dev, err = p.o.Ports.Mapper.CreateLinear(ctx, name, v.SizeSectors, v.NewDisk.Path)
	} else {
		meta := v.object(ObjMetadata)
		if meta == nil || meta.Device == "" {
			return "", fmt.Errorf("plan: volume %s: no metadata device recorded: abort and prepare again", v.Spec.Name)
		}
		c := dm.Clone{Metadata: meta.Device, Destination: v.NewDisk.Path, Source: v.OldDisk.Path,
			RegionSize: dm.Sectors(v.Spec.RegionSectors), NoHydration: true}
		p.logf("volume %s: create %s: %s", v.Spec.Name, name, CloneLine(v.SizeSectors, c))
		dev, err = p.o.Ports.Mapper.CreateClone(ctx, name, v.SizeSectors, c)
	}
	if err != nil {
		return "", fmt.Errorf("plan: volume %s: create device %s: %w", v.Spec.Name, name, err)
	}
	return dev, p.created(v, ObjDevice, dev)
}

func (p *Planner) exportSpec(v *Volume, dev string) ExportSpec {
	return ExportSpec{IQN: v.Spec.Export.IQN, Portals: v.Spec.Export.Portals, StorageName: DMName(v.Spec.Name),
		Device: dev, HostIQN: v.Spec.HostIQN}
}

func (p *Planner) ensureExport(ctx context.Context, v *Volume, dev string) error {
	if _, err := p.push(v, ObjExport, v.Spec.Export.IQN); err != nil {
		return err
	}
	e := p.exportSpec(v, dev)
	p.logf("volume %s: export %s as %s on %v to %s only", v.Spec.Name, dev, e.IQN, e.Portals, e.HostIQN)
	if err := p.o.Ports.Exporter.Apply(ctx, e); err != nil {
		return fmt.Errorf("plan: volume %s: export %s: %w", v.Spec.Name, e.IQN, err)
	}
	v.Exported = true
	return p.created(v, ObjExport, "")
}

// waitSession polls the export's sessions until the host's IQN appears.
func (p *Planner) waitSession(ctx context.Context, v *Volume) error {
	timeout := v.Spec.SessionTimeout.D()
	if timeout <= 0 {
		timeout = DefaultSessionTimeout
	}
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
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.o.PollInterval):
		}
	}
}

// Start enables background hydration of a cut-over volume. The throttle is
// kept by the controller of `lunferry run` (see Tick).
func (p *Planner) Start(ctx context.Context, name string) (*Volume, error) {
	var v *Volume
	err := p.locked(ctx, func() error {
		var err error
		if v, err = p.store.Load(name); err != nil {
			return err
		}
		switch v.Step {
		case StepCutOver, StepHydrating:
		case StepHydrated:
			return nil
		default:
			return &StepError{Volume: name, Step: v.Step, Want: "start", Hint: "hydration starts after cutover"}
		}
		v.Step = StepHydrating
		v.LastError = ""
		if err := p.save(v); err != nil {
			return err
		}
		if v.Paused {
			p.logf("volume %s is paused: run `lunferry migrate resume %s` to hydrate", name, name)
			return nil
		}
		return p.enable(ctx, v)
	})
	return v, err
}

// enable starts hydration under the throttle: the Regulator's first
// decision (threshold, batch size, enable) is applied at once, so that
// hydration never runs unthrottled until the next control round. Without a
// Regulator, hydration is simply enabled.
func (p *Planner) enable(ctx context.Context, v *Volume) error {
	name := DMName(v.Spec.Name)
	msgs := []string{"enable_hydration"}
	if r := p.o.Ports.Regulator; r != nil && !p.o.DryRun {
		st, err := p.o.Ports.Mapper.CloneStatus(ctx, name)
		if err != nil {
			return fmt.Errorf("plan: volume %s: read clone status: %w", v.Spec.Name, err)
		}
		now := p.o.Now()
		r.Forget(v.Spec.Name)
		msgs = r.Regulate(v.Spec.Name, st, now, v.Spec.Throttle.RateAt(now))
	}
	for _, m := range msgs {
		p.logf("volume %s: message %s: %s", v.Spec.Name, name, m)
		if err := p.o.Ports.Mapper.Message(ctx, name, m); err != nil {
			v.LastError = err.Error()
			p.save(v)
			return fmt.Errorf("plan: volume %s: message %q: %w", v.Spec.Name, m, err)
		}
	}
	return nil
}

// Pause stops background hydration until Resume; host I/O goes on.
func (p *Planner) Pause(ctx context.Context, name string) error {
	return p.locked(ctx, func() error {
		v, err := p.store.Load(name)
		if err != nil {
			return err
		}
		if v.Step != StepHydrating && v.Step != StepCutOver {
			return &StepError{Volume: name, Step: v.Step, Want: "pause", Hint: "only hydration can be paused"}
		}
		v.Paused = true
		if err := p.save(v); err != nil {
			return err
		}
		if p.o.Ports.Regulator != nil {
			p.o.Ports.Regulator.Forget(name)
		}
		if v.Step == StepHydrating {
			p.logf("volume %s: message %s: disable_hydration", name, DMName(name))
			if err := p.o.Ports.Mapper.Message(ctx, DMName(name), "disable_hydration"); err != nil {
				return fmt.Errorf("plan: volume %s: disable hydration: %w", name, err)
			}
		}
		return nil
	})
}

// Resume undoes Pause.
func (p *Planner) Resume(ctx context.Context, name string) error {
	return p.locked(ctx, func() error {
		v, err := p.store.Load(name)
		if err != nil {
			return err
		}
		if !v.Paused {
			return nil
		}
		v.Paused = false
		if err := p.save(v); err != nil {
			return err
		}
		if v.Step == StepHydrating {
			return p.enable(ctx, v)
		}
		return nil
	})
}

// SetThrottle replaces a volume's throttle schedule; `lunferry run` applies
// it at its next tick.
func (p *Planner) SetThrottle(ctx context.Context, name string, sched clone.Schedule) error {
	return p.locked(ctx, func() error {
		v, err := p.store.Load(name)
		if err != nil {
			return err
		}
		if v.Step.Finalized() || v.Step == StepAborted {
			return &StepError{Volume: name, Step: v.Step, Want: "throttle", Hint: "the migration is over"}
		}
		v.Spec.Throttle = sched
		p.logf("volume %s: throttle %s", name, sched)
		return p.save(v)
	})
}

// Finalize swaps the clone live to linear over the new LUN once hydration is
// complete, detaches the old LUN and frees the metadata. Before hydration
// completes it refuses with ErrNotReady.
func (p *Planner) Finalize(ctx context.Context, name string) (*Volume, error) {
	var v *Volume
	err := p.locked(ctx, func() error {
		var all []*Volume
		var err error
		v, all, err = p.load(name)
		if err != nil {
			return err
		}
		switch v.Step {
		case StepHydrated, StepFinalizing:
		case StepFinalized, StepHandingOver, StepHandedOver:
			p.logf("volume %s already finalized", name)
			return nil
		case StepHydrating:
			st, err := p.o.Ports.Mapper.CloneStatus(ctx, DMName(name))
			if err != nil {
				return fmt.Errorf("plan: volume %s: read clone status: %w", name, err)
			}
			if !statusComplete(st) {
				return fmt.Errorf("plan: volume %s: %w: hydration is at %.1f%% (%d of %d regions): finalize once it reaches 100%% (see `lunferry migrate status %s`)",
					name, ErrNotReady, 100*st.Fraction(), st.HydratedRegions, st.TotalRegions, name)
			}
			v.Step, v.HydratedAt = StepHydrated, p.o.Now().UTC()
		case StepCutOver:
			return fmt.Errorf("plan: volume %s: %w: hydration has not started: run `lunferry migrate start %s`", name, ErrNotReady, name)
		default:
			return &StepError{Volume: name, Step: v.Step, Want: "finalize", Hint: "finalize follows hydration"}
		}
		release := p.inhibit("lunferry finalize of " + name)
		defer release()
		return p.transition(ctx, v, StepFinalizing, StepFinalized, func() error {
			return p.finalize(ctx, v, all)
		})
	})
	return v, err
}

// statusComplete reports a clone that is healthy and fully hydrated.
func statusComplete(st dm.CloneStatus) bool { return !st.Faulty() && st.Hydrated() }

func (p *Planner) finalize(ctx context.Context, v *Volume, all []*Volume) error {
	s := &v.Spec
	name := DMName(s.Name)
	if _, err := p.runHooks(ctx, v, "pre-finalize", s.Hooks.PreFinalize); err != nil {
		return err
	}
	if !v.Linear {
		st, err := p.o.Ports.Mapper.CloneStatus(ctx, name)
		if err != nil {
			return fmt.Errorf("plan: volume %s: read clone status: %w", s.Name, err)
		}
		if !statusComplete(st) {
			return fmt.Errorf("plan: volume %s: %w: clone reports %d of %d regions hydrated: wait, then rerun finalize",
				s.Name, ErrNotReady, st.HydratedRegions, st.TotalRegions)
		}
		p.logf("volume %s: swap %s live to: %s", s.Name, name, LinearLine(v.SizeSectors, v.NewDisk.Path))
		held, err := p.o.Ports.Mapper.SwapLinear(ctx, name, v.SizeSectors, v.NewDisk.Path)
		if err != nil {
			return fmt.Errorf("plan: volume %s: swap %s to linear: %w", s.Name, name, err)
		}
		p.logf("volume %s: swapped; I/O held for %s", s.Name, held.Round(time.Millisecond))
		v.Linear, v.SwapHeld = true, Duration(held)
		if err := p.save(v); err != nil {
			return err
		}
	}
	if err := p.undoObject(ctx, v, ObjOldLogin, all); err != nil {
		return err
	}
	if err := p.undoObject(ctx, v, ObjMetadata, all); err != nil {
		return err
	}
	if _, err := p.runHooks(ctx, v, "post-finalize", s.Hooks.PostFinalize); err != nil {
		return err
	}
	v.FinalizedAt = p.o.Now().UTC()
	return nil
}

// undoObject removes one object of v's stack, if present, and pops it.
// A login shared with another live volume is left in place.
func (p *Planner) undoObject(ctx context.Context, v *Volume, kind ObjectKind, all []*Volume) error {
	o := v.object(kind)
	if o == nil {
		return nil
	}
	s := &v.Spec
	var err error
	switch kind {
	case ObjExport:
		p.logf("volume %s: tear down export %s", s.Name, o.Name)
		err = p.o.Ports.Exporter.Teardown(ctx, s.Export.IQN, DMName(s.Name))
	case ObjDevice:
		p.logf("volume %s: remove device %s", s.Name, o.Name)
		err = p.o.Ports.Mapper.Remove(ctx, o.Name)
	case ObjOldLogin, ObjNewLogin:
		l := s.Old
		if kind == ObjNewLogin {
			l = s.New
		}
		if user := sharedLogin(v, l, all); user != "" {
			p.logf("volume %s: keep session %s, volume %s uses it too", s.Name, o.Name, user)
		} else {
			p.logf("volume %s: log out of %s", s.Name, o.Name)
			err = p.o.Ports.Initiator.Logout(ctx, targetOf(l))
		}
	case ObjMetadata:
		if v.MetadataFile != "" {
			p.logf("volume %s: detach and delete metadata %s", s.Name, v.MetadataFile)
			err = p.o.Ports.Metadata.DetachFile(ctx, v.MetadataFile, true)
		}
	}
	if err != nil {
		return fmt.Errorf("plan: volume %s: remove %s %s: %w", s.Name, kind, o.Name, err)
	}
	return p.pop(v, kind)
}

// sharedLogin returns the name of another volume whose live objects
// include a session to l's target.
func sharedLogin(v *Volume, l LUN, all []*Volume) string {
	for _, o := range all {
		if o.Spec.Name == v.Spec.Name {
			continue
		}
		for _, ob := range o.Objects {
			if (ob.Kind == ObjOldLogin && sameTarget(o.Spec.Old, l)) || (ob.Kind == ObjNewLogin && sameTarget(o.Spec.New, l)) {
				return o.Spec.Name
			}
		}
	}
	return ""
}

// HandoverOptions tune Handover.
type HandoverOptions struct {
	// Force tears the export down even while an initiator still has a
	// session on it: the host's I/O to the proxy then fails.
	Force bool
}

// Handover is the optional last step, after finalize: the host goes
// straight to the new array and the proxy is retired. The pre-handover
// hooks move the host (map the new LUN to the host on the new array; on
// the host, log out of the proxy and log in to the new array); while the
// host still has a session on the proxy's export Handover refuses with a
// *HostSessionError (unless o.Force). Then the export, the linear device
// and the proxy's session to the new LUN are removed, the post-handover
// hooks run and the volume is handed over: final, `lunferry volume remove`
// forgets it. Like every step it is idempotent and resumed by a rerun.
func (p *Planner) Handover(ctx context.Context, name string, o HandoverOptions) (*Volume, error) {
	var v *Volume
	err := p.locked(ctx, func() error {
		var all []*Volume
		var err error
		v, all, err = p.load(name)
		if err != nil {
			return err
		}
		switch v.Step {
		case StepFinalized, StepHandingOver:
		case StepHandedOver:
			p.logf("volume %s already handed over", name)
			return nil
		case StepFinalizing:
			return &StepError{Volume: name, Step: v.Step, Want: "handover",
				Hint: fmt.Sprintf("finalize was interrupted: rerun `lunferry migrate finalize %s` first", name)}
		case StepCutOver, StepHydrating, StepHydrated:
			return &StepError{Volume: name, Step: v.Step, Want: "handover",
				Hint: fmt.Sprintf("the host can only move to the new array once it holds all the data: hydrate, then run `lunferry migrate finalize %s`", name)}
		default:
			return &StepError{Volume: name, Step: v.Step, Want: "handover", Hint: "handover follows finalize"}
		}
		if err := p.checkHookList(&v.Spec, v.Spec.Hooks.PreHandover, v.Spec.Hooks.PostHandover); err != nil {
			return err
		}
		release := p.inhibit("lunferry handover of " + name)
		defer release()
		return p.transition(ctx, v, StepHandingOver, StepHandedOver, func() error {
			return p.handover(ctx, v, all, o)
		})
	})
	return v, err
}

func (p *Planner) handover(ctx context.Context, v *Volume, all []*Volume, o HandoverOptions) error {
	s := &v.Spec
	if _, err := p.runHooks(ctx, v, "pre-handover", s.Hooks.PreHandover); err != nil {
		return err
	}
	if err := p.checkHostGone(ctx, v, o.Force); err != nil {
		var hs *HostSessionError
		if errors.As(err, &hs) {
			// The hooks did not move the host: the next attempt runs
			// them again, and until the host has left, restore rebuilds
			// the proxy for it.
			v.HooksDone = slices.DeleteFunc(v.HooksDone, func(id string) bool { return strings.HasPrefix(id, "pre-handover#") })
			v.HostMovedAt = time.Time{}
		}
		return err
	}
	if v.HostMovedAt.IsZero() {
		v.HostMovedAt = p.o.Now().UTC()
		if err := p.save(v); err != nil {
			return err
		}
	}
	// Finalize already released the old LUN and the metadata; they are in
	// the list so that nothing of the volume can be left behind.
	for _, k := range []ObjectKind{ObjExport, ObjDevice, ObjOldLogin, ObjMetadata, ObjNewLogin} {
		if err := p.undoObject(ctx, v, k, all); err != nil {
			return err
		}
	}
	if _, err := p.runHooks(ctx, v, "post-handover", s.Hooks.PostHandover); err != nil {
		return err
	}
	v.HandedOverAt = p.o.Now().UTC()
	p.logf("volume %s handed over: the host uses %s lun %d directly; the proxy holds nothing of the volume", s.Name, s.New.IQN, s.New.LUN)
	return nil
}

// sessionGrace is how many poll intervals checkHostGone re-reads the
// export's sessions: the target may take a moment to drop a session the
// host has just ended.
const sessionGrace = 5

// checkHostGone returns a *HostSessionError while an initiator is logged
// in to the volume's export (with force, it logs and returns nil). An
// export already torn down has no sessions.
func (p *Planner) checkHostGone(ctx context.Context, v *Volume, force bool) error {
	s := &v.Spec
	if v.object(ObjExport) == nil {
		return nil
	}
	if p.o.DryRun {
		// The hooks did not run: the host has not moved yet.
		p.logf("volume %s: would refuse to go on while an initiator is logged in to %s (the pre-handover hooks move the host)", s.Name, s.Export.IQN)
		return nil
	}
	ok, err := p.o.Ports.Exporter.Lookup(ctx, s.Export.IQN)
	if err != nil {
		return fmt.Errorf("plan: volume %s: look up target %s: %w", s.Name, s.Export.IQN, err)
	}
	if !ok {
		return nil
	}
	var sess []string
	for i := 0; ; i++ {
		sess, err = p.o.Ports.Exporter.Sessions(ctx, s.Export.IQN)
		if err != nil {
			return fmt.Errorf("plan: volume %s: read sessions of %s: %w", s.Name, s.Export.IQN, err)
		}
		if len(sess) == 0 {
			return nil
		}
		if force || i >= sessionGrace {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.o.PollInterval):
		}
	}
	if force {
		p.logf("volume %s: --force: tearing export %s down under %s; their I/O to the proxy fails", s.Name, s.Export.IQN, strings.Join(sess, ", "))
		return nil
	}
	return &HostSessionError{Volume: s.Name, HostIQN: s.HostIQN, ExportIQN: s.Export.IQN, Sessions: sess}
}

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
	var rep *AbortReport
	err := p.locked(ctx, func() error {
		v, all, err := p.load(name)
		if err != nil {
			return err
		}
		switch {
		case v.Step == StepAborted:
			rep = abortReport(v, v.AbortFrom)
			return nil
		case v.Step == StepHandingOver:
			return &StepError{Volume: name, Step: v.Step, Want: "abort",
				Hint: fmt.Sprintf("the old LUN is no longer in use and the host is being moved to the new array; there is nothing to roll back to: rerun `lunferry migrate handover %s` to finish", name)}
		case v.Step == StepHandedOver:
			return &StepError{Volume: name, Step: v.Step, Want: "abort",
				Hint: "the host uses the new array directly and the proxy holds nothing of the volume; there is nothing to roll back to"}
		case v.Step == StepFinalized, v.Linear:
			return &StepError{Volume: name, Step: v.Step, Want: "abort",
				Hint: "the device already runs linear over the new LUN and the old LUN is no longer in use; there is nothing to roll back to"}
		}
		from := v.Step
		if from == StepAborting {
			from = v.AbortFrom
		}
		v.AbortFrom = from
		if p.o.Ports.Regulator != nil {
			p.o.Ports.Regulator.Forget(name)
		}
		err = p.transition(ctx, v, StepAborting, StepAborted, func() error {
			if v.object(ObjExport) != nil {
				if _, err := p.runHooks(ctx, v, "pre-abort", v.Spec.Hooks.PreAbort); err != nil {
					return err
				}
			}
			for _, k := range []ObjectKind{ObjExport, ObjDevice, ObjOldLogin, ObjMetadata, ObjNewLogin} {
				if err := p.undoObject(ctx, v, k, all); err != nil {
					return err
				}
			}
			if _, err := p.runHooks(ctx, v, "post-abort", v.Spec.Hooks.PostAbort); err != nil {
				return err
			}
			v.AbortedAt = p.o.Now().UTC()
			return nil
		})
		if err != nil {
			return fmt.Errorf("%w: fix the cause and rerun `lunferry migrate abort %s`", err, name)
		}
		rep = abortReport(v, from)
		return nil
	})
	return rep, err
}

func abortReport(v *Volume, from Step) *AbortReport {
	r := &AbortReport{Volume: v.Spec.Name, From: from, HostWritesLost: v.Exported}
	if v.Exported {
		r.Message = fmt.Sprintf("volume %s aborted: the old LUN %s lun %d was never written by lunferry and holds the data as of cutover; writes the host made after cutover exist ONLY on the new LUN %s lun %d and are not on the old LUN",
			v.Spec.Name, v.Spec.Old.IQN, v.Spec.Old.LUN, v.Spec.New.IQN, v.Spec.New.LUN)
	} else {
		r.Message = fmt.Sprintf("volume %s aborted before the host was served by the proxy: the old LUN %s lun %d is as it was",
			v.Spec.Name, v.Spec.Old.IQN, v.Spec.Old.LUN)
	}
	return r
}

func (p *Planner) inhibit(why string) func() {
	release, err := p.o.Ports.Inhibitor.Inhibit(why)
	if err != nil {
		p.logf("note: cannot inhibit shutdown (%v); do not reboot the proxy during this step", err)
		return func() {}
	}
	return release
}
