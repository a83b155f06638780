package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

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
	return p.guarded(ctx, cmdHandover, name, stepFuncs{
		before: func(v *Volume, _ []*Volume) error {
			return p.checkHookList(&v.Spec, v.Spec.Hooks.PreHandover, v.Spec.Hooks.PostHandover)
		},
		run: func(v *Volume, all []*Volume) error { return p.handover(ctx, v, all, o) },
	})
}

func (p *Planner) handover(ctx context.Context, v *Volume, all []*Volume, o HandoverOptions) error {
	s := &v.Spec
	p.logf("volume %s: %s", s.Name, handoverIdentity(v))
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
	if err := p.teardown(ctx, v, all); err != nil {
		return err
	}
	if _, err := p.runHooks(ctx, v, "post-handover", s.Hooks.PostHandover); err != nil {
		return err
	}
	v.HandedOverAt = p.o.Now().UTC()
	p.logf("volume %s handed over: the host uses %s lun %d directly; the proxy holds nothing of the volume", s.Name, s.New.IQN, s.New.LUN)
	return nil
}

// handoverIdentity says plainly what the host's disk becomes: the new
// array's LUN, with the new array's identity, not the one the proxy showed.
func handoverIdentity(v *Volume) string {
	shown := "the proxy's export's"
	if h := v.HostIdentity; h != nil {
		shown = h.Verdict.NewWWID
	}
	was := ""
	if v.NewDisk != nil && v.NewDisk.ID != "" {
		was = " (" + v.NewDisk.ID + " as the proxy sees it)"
	}
	return fmt.Sprintf("after handover the host sees the new array's LUN with the new array's SCSI identity%s, not %s: dm-multipath, udev by-id links, LVM filters and cluster software see a new disk; plan the host's side of the move for it",
		was, shown)
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
		if err := p.sleep(ctx); err != nil {
			return err
		}
	}
	if force {
		p.logf("volume %s: --force: tearing export %s down under %s; their I/O to the proxy fails", s.Name, s.Export.IQN, strings.Join(sess, ", "))
		return nil
	}
	return &HostSessionError{Volume: s.Name, HostIQN: s.HostIQN, ExportIQN: s.Export.IQN, Sessions: sess}
}
