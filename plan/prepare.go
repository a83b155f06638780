package plan

import (
	"context"
	"errors"
	"fmt"
)

// Prepare attaches the new LUN, checks it is at least as large as the old
// one and creates the clone metadata device. The host stays on the old
// array; nothing is written to the old LUN. The old LUN's size comes from
// the spec (old.sizeBytes) or, when not given, from attaching the old LUN
// read-only.
func (p *Planner) Prepare(ctx context.Context, name string) (*Volume, error) {
	return p.guarded(ctx, cmdPrepare, name, stepFuncs{
		before: func(v *Volume, all []*Volume) error { return p.preflight(ctx, v, all) },
		run:    func(v *Volume, _ []*Volume) error { return p.prepare(ctx, v) },
	})
}

func (p *Planner) prepare(ctx context.Context, v *Volume) error {
	s := &v.Spec
	if SameLU(s.Old, s.New) {
		return fmt.Errorf("plan: volume %s: %w: old and new both name LUN %d of target %s (portals %s and %s reach the same device): give the new array's LUN as new",
			s.Name, ErrSameLUN, s.Old.LUN, s.Old.IQN, s.Old.Portal, s.New.Portal)
	}
	if err := p.attach(ctx, v, ObjNewLogin); err != nil {
		return err
	}
	oldSize := uint64(s.Old.SizeBytes)
	if oldSize == 0 {
		p.logf("volume %s: old.sizeBytes not given: attaching the old LUN read-only to read its size", s.Name)
		if err := p.attach(ctx, v, ObjOldLogin); err != nil {
			if errors.Is(err, ErrIdentity) || errors.Is(err, ErrReservations) || errors.Is(err, ErrDiskChanged) {
				return err
			}
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
	return p.createMetadata(ctx, v)
}

// preflight refuses, before anything changes, a volume whose spec is
// invalid (perhaps recorded by an older lunferry), clashes with another
// volume, names hooks that cannot run, or whose kernel names are taken by
// objects this state did not create.
func (p *Planner) preflight(ctx context.Context, v *Volume, all []*Volume) error {
	if err := v.Spec.Validate(); err != nil {
		return err
	}
	if err := checkConflicts(&v.Spec, others(all, v.Spec.Name)); err != nil {
		return err
	}
	if err := p.checkHooks(&v.Spec); err != nil {
		return err
	}
	if err := p.checkSecrets(&v.Spec); err != nil {
		return err
	}
	if err := p.checkTargets(ctx, v); err != nil {
		return err
	}
	return p.checkStrays(ctx, v)
}

// targetFixes says how to get each device-mapper target a volume needs.
var targetFixes = map[string]string{
	"linear": "modprobe dm_mod",
	"clone": "modprobe dm_clone; on Debian, whose kernels lack it, install lunferry-dm-clone-dkms " +
		"(DKMS builds dm-clone.ko from the kernel's linux-source package)",
	"era": "modprobe dm_era (a kernel with CONFIG_DM_ERA)",
}

// checkTargets refuses, before the window, a proxy whose kernel cannot
// build the volume's devices: cutover would otherwise fail after its
// pre-cutover hooks quiesced the host.
func (p *Planner) checkTargets(ctx context.Context, v *Volume) error {
	need := []string{"linear", "clone"}
	if p.wantsEra(v) {
		need = append(need, "era")
	}
	for _, t := range need {
		ok, err := p.o.Ports.Mapper.TargetAvailable(ctx, t)
		if err != nil {
			return fmt.Errorf("plan: volume %s: look up device-mapper target %s: %w", v.Spec.Name, t, err)
		}
		if !ok {
			return fmt.Errorf("plan: volume %s: %w: the kernel has no %q target (module dm-%s): %s, then rerun (`lunferry doctor` checks it)",
				v.Spec.Name, ErrMissingTarget, t, t, targetFixes[t])
		}
	}
	return nil
}

// checkHooks finds, before the window, hooks that are missing or not
// executable.
func (p *Planner) checkHooks(s *Spec) error {
	h := s.Hooks
	return p.checkHookList(s, h.PreCutover, h.PostCutover, h.PreFinalize, h.PostFinalize, h.PreAbort, h.PostAbort,
		h.PreHandover, h.PostHandover, h.PreRollback, h.AddPaths, h.CheckPaths, h.RemoveDirectPaths, h.RestoreDirectPaths)
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
	if err := checkBlockSizes(v); err != nil {
		return err
	}
	if v.NewDisk != nil && v.NewDisk.SizeBytes < oldSize {
		return fmt.Errorf("plan: volume %s: %w: new LUN (%s lun %d) is %d bytes (%s), smaller than the old LUN's %d bytes (%s): give a new LUN of at least %d bytes",
			s.Name, ErrSizeMismatch, s.New.IQN, s.New.LUN, v.NewDisk.SizeBytes, Bytes(v.NewDisk.SizeBytes), oldSize, Bytes(oldSize), oldSize)
	}
	return nil
}

// checkStrays refuses to go on when a kernel object with this volume's
// names exists but the volume's state does not record it.
func (p *Planner) checkStrays(ctx context.Context, v *Volume) error {
	for _, kind := range []ObjectKind{ObjDevice, ObjEra} {
		name := map[ObjectKind]string{ObjDevice: DMName(v.Spec.Name), ObjEra: EraName(v.Spec.Name)}[kind]
		if _, ok, err := p.o.Ports.Mapper.Lookup(ctx, name); err != nil {
			return fmt.Errorf("plan: look up device %s: %w", name, err)
		} else if ok && v.object(kind) == nil {
			return fmt.Errorf("plan: volume %s: %w: device-mapper device %s exists but this state did not create it: lunferry will neither adopt nor delete it; inspect it (dmsetup table %s) and remove it yourself if it is a leftover",
				v.Spec.Name, ErrUnknownObject, name, name)
		}
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
