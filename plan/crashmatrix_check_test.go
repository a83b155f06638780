package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// The crash matrix's invariants, checked after each recovery.

// check returns the invariants the case's outcome breaks, each numbered
// as in the issue: (1) the state matches the kernel, (2) what served the
// host serves it, (3) the old LUN was never written, (4) the volume is
// where the recovery takes it, (5) hooks ran as they must.
func (c matrixCase) check(e *env, h *matrixHooks, want plan.Step, run crashRun) []string {
	ctx := context.Background()
	all, err := e.p.List(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	v := volumeNamed(all, "vol1")
	inv := e.k.Inventory()
	var bad []string
	add := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	if v.Step != want {
		add("(4) step is %s, want %s", v.Step, want)
	} else if c.step.check != nil && v.Step == c.step.done && !c.rec.abort {
		if err := c.step.check(v, inv); err != nil {
			add("(4) %s: %v", c.step.done, err)
		}
	}
	for _, p := range recordedMissing(v, inv) {
		add("(1) recorded but not in the kernel: %s", p)
	}
	for _, p := range stranded(all, inv, e.dir) {
		add("(1) in the kernel but recorded by no volume: %s", p)
	}
	how := serving(v)
	if how != "" {
		if err := checkServed(inv, how); err != nil {
			add("(2) %s serves the host through the proxy (%s) but %v", v.Step, how, err)
		}
	} else if run.served && !c.rec.abort && !movedOff(v, e.k) {
		add("(2) the proxy served the host before the crash and nothing serves it at %s", v.Step)
	}
	for _, w := range e.k.Writes(oldKey) {
		if (c.step.online || c.step.rollsBack) && w == "linear "+plan.DMName("vol1") {
			continue // the online pass-through, a rollback: the host's own writes
		}
		if c.step.rollsBack && strings.HasPrefix(w, "rollback copy from ") {
			continue // rollback's copy, the one writer of the old LUN
		}
		add("(3) old LUN written: %s", w)
	}
	for _, w := range e.k.Violations() {
		add("(3) %s", w)
	}
	bad = append(bad, c.hookProblems(v, e.k, h, run)...)
	return bad
}

func volumeNamed(all []*plan.Volume, name string) *plan.Volume {
	for _, v := range all {
		if v.Spec.Name == name {
			return v
		}
	}
	return &plan.Volume{Step: "(gone)"}
}

// hookProblems: a hook runs once per step (twice when the crash came just
// after its run, before the process recorded it), and the hooks of the
// step the volume reached did run; post-abort hooks run only after the
// teardown (matrixHooks).
func (c matrixCase) hookProblems(v *plan.Volume, k *plantest.Kernel, h *matrixHooks, run crashRun) []string {
	var bad []string
	runs := map[string]int{}
	for _, hc := range k.Hooks[run.hooks:] {
		runs[hc.Path]++
	}
	for path, n := range runs {
		allowed := 1
		if c.when == after && c.call == "Hook "+path {
			allowed = 2
		}
		if n > allowed {
			bad = append(bad, fmt.Sprintf("(5) hook %s ran %d times", path, n))
		}
	}
	for _, path := range c.hooksDue(v) {
		if runs[path] == 0 {
			bad = append(bad, fmt.Sprintf("(5) hook %s did not run", path))
		}
	}
	for _, b := range h.bad {
		bad = append(bad, "(5) "+b)
	}
	return bad
}

// hooksDue are the hooks that must have run for the volume to be where it
// is: the completed step's, or an abort's (pre-abort once the host was
// served by the proxy).
func (c matrixCase) hooksDue(v *plan.Volume) []string {
	switch {
	case v.Step == plan.StepAborted && passthrough(v):
		return nil // backed out: restoreDirectPaths ran if the export was begun
	case v.Step == plan.StepAborted && v.Exported:
		return []string{preAbort, postAbort}
	case v.Step == plan.StepAborted:
		return []string{postAbort}
	case v.Step == c.step.done:
		return c.step.hooks
	}
	return nil
}

// serving is what the volume's step says serves the host through the
// proxy: "clone", "linear", or "" (the proxy does not serve it).
func serving(v *plan.Volume) string {
	switch v.Step {
	case plan.StepCuttingOver:
		if passthrough(v) && v.Cutover.Phase != "" && v.Cutover.Phase != plan.PhasePassthrough {
			return "passthrough"
		}
	case plan.StepCutOver, plan.StepHydrating, plan.StepHydrated, plan.StepFaulty:
		return "clone"
	case plan.StepFinalizing:
		if v.Linear {
			return "linear"
		}
		return "clone"
	case plan.StepFinalized:
		return "linear"
	case plan.StepHandingOver:
		if v.HostMovedAt.IsZero() {
			return "linear"
		}
	case plan.StepAborting:
		if !v.AbortTeardown && v.Exported {
			if v.Rollback != nil && v.Rollback.Swapped {
				return "rolled-back"
			}
			return "clone"
		}
	case plan.StepRollingBack:
		switch {
		case v.Rollback != nil && v.Rollback.Swapped:
			return "rolled-back"
		case v.Linear:
			return "linear"
		}
		return "clone"
	case plan.StepRolledBack:
		return "rolled-back"
	}
	return ""
}

// movedOff: the host was moved off the proxy on purpose: handed over to
// the new array, or back to the old one by an abort's hooks.
func movedOff(v *plan.Volume, k *plantest.Kernel) bool {
	switch v.Step {
	case plan.StepHandedOver:
		return !k.HostLogsIn
	case plan.StepAborted:
		return hookRuns(k, postAbort) > 0 || hookRuns(k, restoreDir) > 0
	}
	return false
}

// passthrough: an online cutover before its takeover.
func passthrough(v *plan.Volume) bool {
	return v.Cutover != nil && v.Cutover.Online && v.Cutover.Phase != plan.PhaseTakenOver
}

// checkServed checks that the export serves vol1's device, a clone of the
// old LUN onto the new one or linear over the new LUN.
func checkServed(inv plantest.Inventory, how string) error {
	d, ok := inv.Devices[plan.DMName("vol1")]
	ex, exported := inv.Exports[exportIQN]
	switch {
	case !ok:
		return errors.New("the device is gone")
	case !exported:
		return errors.New("the export is gone")
	case ex.HostIQN != hostIQN:
		return fmt.Errorf("the export serves %s, not %s", ex.HostIQN, hostIQN)
	case d.Suspended:
		return errors.New("the device is suspended")
	case ex.Device != d.Node:
		if err := servedThroughEra(inv, "vol1", d, ex); err != nil {
			return err
		}
	}
	switch {
	case how == "clone" && (d.Clone == nil || inv.Disks[d.Clone.Source] != oldKey || inv.Disks[d.Clone.Destination] != newKey):
		return fmt.Errorf("the device runs %q", d.Table)
	case how == "linear" && (d.Clone != nil || inv.Disks[d.Linear] != newKey):
		return fmt.Errorf("the device runs %q", d.Table)
	case (how == "passthrough" || how == "rolled-back") && (d.Clone != nil || inv.Disks[d.Linear] != oldKey || inv.ReadOnly[d.Linear]):
		return fmt.Errorf("the device runs %q (old disk read-only: %v)", d.Table, inv.ReadOnly[d.Linear])
	}
	return nil
}

// recordedMissing lists v's recorded objects the kernel does not hold as
// recorded. Pending objects are the interrupted step's to finish; once
// linear, nothing needs the old LUN or the metadata (plan's own rule).
func recordedMissing(v *plan.Volume, inv plantest.Inventory) []string {
	var out []string
	for _, o := range v.Objects {
		if o.Pending {
			if v.Step == plan.StepPrepared || v.Step == plan.StepCutOver || v.Step == plan.StepHydrating ||
				v.Step == plan.StepHydrated || v.Step == plan.StepFinalized {
				out = append(out, fmt.Sprintf("%s %s still pending at %s", o.Kind, o.Name, v.Step))
			}
			continue
		}
		if v.Linear && v.Rollback == nil && (o.Kind == plan.ObjOldLogin || o.Kind == plan.ObjMetadata || o.Kind == plan.ObjFence) {
			continue
		}
		if err := objectHeld(v, o, inv); err != nil {
			out = append(out, fmt.Sprintf("%s %s: %v", o.Kind, o.Name, err))
		}
	}
	return out
}

// objectHeld checks one recorded object against the kernel.
func objectHeld(v *plan.Volume, o plan.Object, inv plantest.Inventory) error {
	switch o.Kind {
	case plan.ObjNewLogin:
		if !slices.Contains(inv.Sessions, newTarget) || v.NewDisk == nil || inv.Disks[v.NewDisk.Path] != newKey {
			return fmt.Errorf("no session or no new disk (%+v)", v.NewDisk)
		}
	case plan.ObjOldLogin:
		if !slices.Contains(inv.Sessions, oldTarget) || v.OldDisk == nil || inv.Disks[v.OldDisk.Path] != oldKey {
			return fmt.Errorf("no session or no old disk (%+v)", v.OldDisk)
		}
		// The host writes the old LUN in an online pass-through and
		// once rolled back; otherwise nothing may.
		writable := passthrough(v) || (v.Rollback != nil && v.Rollback.Swapped)
		if inv.ReadOnly[v.OldDisk.Path] == writable {
			return fmt.Errorf("old disk %s read-only: %v (online pass-through or rolled back: %v)", v.OldDisk.Path, inv.ReadOnly[v.OldDisk.Path], writable)
		}
	case plan.ObjFence:
		if inv.Fences[oldKey] == 0 || inv.Fences[oldKey] != v.Cutover.FenceKey {
			return fmt.Errorf("the old LUN holds key %#x, recorded %#x", inv.Fences[oldKey], v.Cutover.FenceKey)
		}
	case plan.ObjMetadata:
		fi, err := os.Stat(v.MetadataFile)
		if inv.Loops[v.MetadataFile] != o.Device || err != nil || uint64(fi.Size()) < v.MetadataBytes {
			return fmt.Errorf("loop %q, want %q; file: %v", inv.Loops[v.MetadataFile], o.Device, err)
		}
	case plan.ObjDevice:
		if d, ok := inv.Devices[o.Name]; !ok || d.Node != o.Device {
			return fmt.Errorf("device %s is %q (there: %v), recorded %q", o.Name, d.Node, ok, o.Device)
		}
	case plan.ObjExport:
		if _, ok := inv.Exports[o.Name]; !ok {
			return errors.New("no such target")
		}
	case plan.ObjEra:
		return eraHeld(v, o, inv)
	}
	return nil
}

// eraHeld checks the era device over the volume's device and its metadata
// on its recorded loop device.
func eraHeld(v *plan.Volume, o plan.Object, inv plantest.Inventory) error {
	d, ok := inv.Devices[o.Name]
	lower, lok := inv.Devices[plan.DMName("vol1")]
	switch {
	case !ok || d.Node != o.Device || d.Era == nil:
		return fmt.Errorf("device %s is %q (there: %v), recorded %q", o.Name, d.Node, ok, o.Device)
	case !lok || d.Era.Origin != lower.Node:
		return fmt.Errorf("era device %s is not over %s (%q)", o.Name, plan.DMName("vol1"), d.Table)
	case v.Era == nil || inv.Loops[v.Era.MetadataFile] != v.Era.MetadataDevice || d.Era.Metadata != v.Era.MetadataDevice:
		return fmt.Errorf("era metadata not on its recorded loop device (state %+v, table %q)", v.Era, d.Table)
	}
	return nil
}

// stranded lists kernel objects and metadata files with lunferry's names
// that no volume records.
func stranded(all []*plan.Volume, inv plantest.Inventory, dir string) []string {
	recorded := map[string]bool{}
	for _, v := range all {
		for _, o := range v.Objects {
			switch o.Kind {
			case plan.ObjDevice:
				recorded["device "+o.Name] = true
			case plan.ObjExport:
				recorded["export "+o.Name] = true
			case plan.ObjMetadata:
				recorded["loop over "+v.MetadataFile] = true
				recorded["file "+v.MetadataFile] = true
			case plan.ObjOldLogin:
				recorded["session "+v.Spec.Old.Portal+","+v.Spec.Old.IQN] = true
			case plan.ObjNewLogin:
				recorded["session "+v.Spec.New.Portal+","+v.Spec.New.IQN] = true
			case plan.ObjFence:
				recorded[fmt.Sprintf("fence %#x", v.Cutover.FenceKey)] = true
			case plan.ObjEra:
				recorded["device "+o.Name] = true
				recorded["loop over "+v.Era.MetadataFile] = true
				recorded["file "+v.Era.MetadataFile] = true
			}
		}
	}
	held := volumeObjects(inv)
	for _, key := range inv.Fences {
		held = append(held, fmt.Sprintf("fence %#x", key))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "metadata", "*"))
	for _, f := range files {
		held = append(held, "file "+f)
	}
	var out []string
	for _, h := range held {
		if !recorded[h] {
			out = append(out, h)
		}
	}
	return out
}
