package plan

import (
	"context"
	"fmt"
	"strings"

	"github.com/lunferry/lunferry/dm"
)

// reconcileDevice compares the volume's dm device with what the state
// records before a step acts on it. It settles what finalize's own
// interrupted swap left behind (the linear table live but not recorded,
// or loaded with the device still suspended) and refuses anything else:
// another table, a device suspended outside finalize. A missing device is
// left to the caller.
func (p *Planner) reconcileDevice(ctx context.Context, v *Volume) error {
	if p.o.DryRun {
		return nil
	}
	name := DMName(v.Spec.Name)
	d, ok, err := p.o.Ports.Mapper.Inspect(ctx, name)
	if err != nil {
		return fmt.Errorf("plan: volume %s: inspect %s: %w", v.Spec.Name, name, err)
	}
	if !ok {
		return nil
	}
	swapTo, what := ownSwap(v)
	if d.Suspended {
		if err := p.resumeOwnSwap(ctx, v, d, swapTo); err != nil {
			return err
		}
		if d.Inactive != nil {
			d.Active = d.Inactive
		}
	}
	switch {
	case recordedTable(v, d.Active):
		return nil
	case swapTo != nil && swapTo(d.Active):
		p.logf("volume %s: %s already runs the %s's table: its swap was done before it was recorded; recording it", v.Spec.Name, name, what)
		switch {
		case v.Step == StepRollingBack:
			v.Rollback.Swapped = true
		case v.passthrough():
			v.Cutover.Phase, v.Exported = PhaseTakenOver, true
		default:
			v.Linear = true
		}
		return p.save(v)
	}
	want := "clone of the old LUN onto the new one"
	switch {
	case v.rolledBack():
		want = "linear over the old LUN (rolled back)"
	case v.Linear:
		want = "linear over the new LUN"
	case v.passthrough():
		want = "linear over the old LUN (online pass-through)"
	}
	return fmt.Errorf("plan: volume %s: %w: %s runs %q but the state records %s: lunferry will not guess; inspect it (dmsetup table %s), then restore it as recorded or abort",
		v.Spec.Name, ErrDrift, name, tableText(d.Active), want, name)
}

// deviceDiffers says how the live device differs from what v records ("":
// it does not), without acting: what status reports.
func (p *Planner) deviceDiffers(ctx context.Context, v *Volume) string {
	d, ok, err := p.o.Ports.Mapper.Inspect(ctx, DMName(v.Spec.Name))
	switch {
	case err != nil:
		return "device unreadable: " + err.Error()
	case !ok:
		return "device gone"
	case d.Suspended:
		return fmt.Sprintf("device suspended (the host's I/O waits; inactive table %q)", tableText(d.Inactive))
	case !recordedTable(v, d.Active):
		return fmt.Sprintf("device runs %q, not the recorded table", tableText(d.Active))
	}
	return ""
}

// recordedTable reports whether t is the table v records: linear over the
// new LUN once finalize swapped, linear over the old LUN in an online
// pass-through, the clone otherwise.
func recordedTable(v *Volume, t []dm.RawLine) bool {
	switch {
	case v.rolledBack():
		return linearOver(t, v.OldDisk)
	case v.Linear:
		return linearOver(t, v.NewDisk)
	case v.passthrough():
		return linearOver(t, v.OldDisk)
	}
	return cloneOver(t, v)
}

// ownSwap returns the table a live swap of v's current step loads, as a
// test of a table, and the step that makes it (nil when no swap of
// lunferry's can be under way): finalize's linear over the new LUN, an
// online takeover's clone, rollback's linear over the old LUN (also once
// recorded: the record is saved before the resume that makes it live).
func ownSwap(v *Volume) (func([]dm.RawLine) bool, string) {
	switch {
	case v.Step == StepRollingBack && v.Rollback != nil:
		return func(t []dm.RawLine) bool { return linearOver(t, v.OldDisk) }, "rollback"
	case v.Step == StepFinalizing && !v.Linear:
		return func(t []dm.RawLine) bool { return linearOver(t, v.NewDisk) }, "finalize"
	case v.Step == StepCuttingOver && v.passthrough():
		return func(t []dm.RawLine) bool { return cloneOver(t, v) }, "online takeover"
	}
	return nil, ""
}

// resumeOwnSwap resumes a suspended device when the suspension is a swap
// of lunferry's own (see ownSwap): its table loaded (resuming completes
// the swap) or none loaded (resuming only releases the host's I/O).
// Anything else is refused: a resume would make a table live behind the
// state's back.
func (p *Planner) resumeOwnSwap(ctx context.Context, v *Volume, d DeviceState, swapTo func([]dm.RawLine) bool) error {
	name := DMName(v.Spec.Name)
	if swapTo == nil || (d.Inactive != nil && !swapTo(d.Inactive)) {
		return fmt.Errorf("plan: volume %s: %w: %s is suspended (the host's I/O waits) with inactive table %q, which no running step of lunferry explains: "+
			"inspect it (dmsetup info %s; dmsetup table --inactive %s) and resume it yourself once you know which table must serve the host",
			v.Spec.Name, ErrDrift, name, tableText(d.Inactive), name, name)
	}
	p.logf("volume %s: %s was left suspended by an interrupted swap; resuming it (inactive table %q)", v.Spec.Name, name, tableText(d.Inactive))
	if v.Step == StepRollingBack && d.Inactive == nil {
		// Back to the table before: the rollback's final round did not
		// get to its swap, and its rerun does it again.
		if err := p.resumeUnswapped(ctx, v); err != nil {
			return fmt.Errorf("plan: volume %s: resume %s: %w", v.Spec.Name, name, err)
		}
		return nil
	}
	if err := p.o.Ports.Mapper.Resume(ctx, name); err != nil {
		return fmt.Errorf("plan: volume %s: resume %s: %w", v.Spec.Name, name, err)
	}
	return nil
}

// linearOver reports a one-line linear table over disk from its start (a
// disk whose device number was not recorded matches any).
func linearOver(t []dm.RawLine, disk *Disk) bool {
	if len(t) != 1 || t[0].Type != "linear" || disk == nil {
		return false
	}
	f := strings.Fields(t[0].Params)
	return len(f) == 2 && f[1] == "0" && (disk.Dev == "" || f[0] == disk.Dev)
}

// cloneOver reports a one-line clone table from v's old LUN onto its new
// one (disks whose device numbers were not recorded match any).
func cloneOver(t []dm.RawLine, v *Volume) bool {
	if len(t) != 1 || t[0].Type != "clone" || v.NewDisk == nil || v.OldDisk == nil {
		return false
	}
	f := strings.Fields(t[0].Params)
	return len(f) >= 3 && (v.NewDisk.Dev == "" || f[1] == v.NewDisk.Dev) && (v.OldDisk.Dev == "" || f[2] == v.OldDisk.Dev)
}

func tableText(t []dm.RawLine) string {
	if t == nil {
		return "none"
	}
	var lines []string
	for _, l := range t {
		lines = append(lines, l.String())
	}
	return strings.Join(lines, "; ")
}
