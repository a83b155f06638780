package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// VolumeStatus is one volume's state with what the kernel says now.
type VolumeStatus struct {
	// Name is the volume's name.
	Name string `json:"name"`
	// Step is the persisted step.
	Step Step `json:"step"`
	// Paused is the pause flag.
	Paused bool `json:"paused"`
	// Progress is the live hydration progress when the clone could be read,
	// else the last one saved.
	Progress Progress `json:"progress"`
	// Percent is Progress as a percentage (100 once hydrated).
	Percent float64 `json:"percent"`
	// Throttle is the throttle schedule and RateNow the rate it asks for
	// now ("unlimited" for none).
	Throttle string `json:"throttle"`
	RateNow  string `json:"rateNow"`
	// Sessions are the initiators logged in to the export.
	Sessions []string `json:"sessions"`
	// Window is the cutover's timing, once cut over.
	Window *WindowTimes `json:"window,omitempty"`
	// OnlinePhase is the last phase an online cutover completed;
	// TakeoverHeld how long its takeover held the host's I/O.
	OnlinePhase  OnlinePhase `json:"onlinePhase,omitempty"`
	TakeoverHeld Duration    `json:"takeoverHeld,omitempty"`
	// Fenced: lunferry's reservation holds the old LUN.
	Fenced bool `json:"fenced,omitempty"`
	// SwapHeld is how long finalize's table swap held the host's I/O.
	SwapHeld Duration `json:"swapHeld,omitempty"`
	// Rollback is the record of a rollback, when one began.
	Rollback *RollbackState `json:"rollback,omitempty"`
	// Thin is what the cutover skipped of the old LUN's unmapped ranges
	// (regions marked hydrated without a copy), or why it copies all.
	Thin *ThinState `json:"thin,omitempty"`
	// Serving says what serves the host's I/O: "old array" (before
	// cutover, or after an abort), "proxy (clone)", "proxy (linear over
	// the new LUN)", "new array" (handed over); "-" when unknown.
	Serving string `json:"serving"`
	// Next is the command that moves the volume on, "" when none applies.
	Next string `json:"next,omitempty"`
	// HandedOverAt is when handover completed.
	HandedOverAt time.Time `json:"handedOverAt,omitempty"`
	// HostWWID is the WWID the export shows the host; OldIdentity says
	// whether it is the old LUN's (false: a new identity, see
	// Spec.Identity). Empty until the old LUN was attached.
	HostWWID    string `json:"hostWWID,omitempty"`
	OldIdentity bool   `json:"oldIdentity,omitempty"`
	// Drift lists what the kernel does not hold as the state records it
	// (an object gone, another table, a suspended device); run and restore
	// rebuild what serves the host.
	Drift []string `json:"drift,omitempty"`
	// StalledSince is set when hydration made no progress for long
	// although it should (see Volume.Stalled).
	StalledSince time.Time `json:"stalledSince,omitempty"`
	// Unreadable is what `lunferry run` found of that stall's cause on the
	// old LUN (the ranges that return read errors), when it looked.
	Unreadable *UnreadableScan `json:"unreadable,omitempty"`
	// AbortPending is set for an abort interrupted before it removed
	// anything: the proxy still serves the host; `migrate abort` finishes
	// it, `migrate abort --cancel` takes it back.
	AbortPending bool `json:"abortPending,omitempty"`
	// Unreachable lists the arrays whose session is not logged in now
	// (I/O to them waits), with the time `lunferry run` first saw it.
	Unreachable []Unreachable `json:"unreachable,omitempty"`
	// SessionTimeouts lists how the timeouts in force on the array
	// sessions differ from the spec's (a session made before the spec
	// changed, or by hand); they apply at the session's next login.
	SessionTimeouts []string `json:"sessionTimeouts,omitempty"`
	// LastError is the error that interrupted the current step.
	LastError string `json:"lastError,omitempty"`
	// Live is false when the kernel could not be read (see LiveError).
	Live bool `json:"live"`
	// LiveError says why the kernel could not be read.
	LiveError string `json:"liveError,omitempty"`
}

// StatusReport is every volume's status plus kernel objects carrying
// lunferry's prefix that no volume knows.
type StatusReport struct {
	// Volumes, sorted by name.
	Volumes []VolumeStatus `json:"volumes"`
	// Strays are unknown objects; lunferry leaves them alone.
	Strays []string `json:"strays,omitempty"`
}

// Status reads every volume (or the named ones) and their live progress
// and sessions. It takes no lock and changes nothing. Every call reads
// the kernel afresh; within one call, the sessions, dm devices and loop
// devices are read once for all volumes (see Snapshotter). A status of
// named volumes reads only their state files: its strays are the
// objects named after those volumes that their state does not record
// and the objects named after no volume at all (see strays).
func (p *Planner) Status(ctx context.Context, names ...string) (*StatusReport, error) {
	p = p.pass()
	all, err := p.loadNamed(names)
	if err != nil {
		return nil, err
	}
	rep := &StatusReport{Volumes: []VolumeStatus{}}
	now := p.o.Now()
	for _, v := range all {
		s := VolumeStatus{Name: v.Spec.Name, Step: v.Step, Paused: v.Paused, Progress: v.Progress,
			Throttle: v.Spec.Throttle.String(), RateNow: v.Spec.Throttle.RateAt(now).String(),
			Sessions: []string{}, Window: v.Window, LastError: v.LastError, Live: true,
			HandedOverAt: v.HandedOverAt, SwapHeld: v.SwapHeld, Rollback: v.Rollback, Thin: v.Thin}
		if m := v.Cutover; m != nil && m.Online {
			s.OnlinePhase, s.TakeoverHeld = m.Phase, m.TakeoverHeld
		}
		s.Fenced = v.object(ObjFence) != nil
		p.readLive(ctx, v, &s, now)
		s.Drift = p.drift(ctx, v)
		if h := v.HostIdentity; h != nil {
			s.HostWWID, s.OldIdentity = h.Verdict.NewWWID, h.Verdict.Exact
		}
		if since, ok := v.Stalled(now); ok {
			s.StalledSince, s.Unreadable = since, v.unreadableFor(since)
		}
		s.Percent = 100 * s.Progress.Fraction()
		if v.Step == StepHydrated || v.Step == StepFinalizing || v.Step.Finalized() {
			s.Percent = 100
		}
		s.Serving, s.Next = serving(v)
		s.AbortPending = v.Step == StepAborting && !v.AbortTeardown
		rep.Volumes = append(rep.Volumes, s)
	}
	if rep.Strays, err = p.strays(ctx, all, len(names) > 0); err != nil {
		return nil, err
	}
	return rep, nil
}

// loadNamed loads the named volumes, sorted by name, or every volume
// when none is named.
func (p *Planner) loadNamed(names []string) ([]*Volume, error) {
	if len(names) == 0 {
		return p.store.LoadAll()
	}
	var out []*Volume
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		v, err := p.store.Load(n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *Volume) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	return out, nil
}

// pass returns a Planner for one read-only pass over the volumes (a
// status): its ports answer lookups from one read of the kernel
// (Ports.snapshot). It carries none of Run's loop state.
func (p *Planner) pass() *Planner {
	q := &Planner{o: p.o, store: p.store}
	q.o.Ports = p.o.Ports.snapshot()
	return q
}

// serving says what serves the host and which command comes next, from
// the step table.
func serving(v *Volume) (serving, next string) {
	i := v.info()
	if i.next != "" {
		next = "lunferry " + i.next + " " + v.Spec.Name
	}
	return i.serving, next
}

// drift says how the kernel differs from what v records, for the steps in
// which the proxy serves the host ("" entries never).
func (p *Planner) drift(ctx context.Context, v *Volume) []string {
	if v.info().restore != restoreRebuild || p.o.DryRun {
		return nil
	}
	var out []string
	gone, err := p.missing(ctx, v)
	if err != nil {
		return []string{err.Error()}
	}
	for _, k := range gone {
		out = append(out, string(k)+" gone")
	}
	if d := v.object(ObjDevice); d != nil && !d.Pending && !slices.Contains(gone, ObjDevice) {
		if why := p.deviceDiffers(ctx, v); why != "" {
			out = append(out, why)
		}
	}
	return out
}

// Check returns an error wrapping ErrDrift when a volume's kernel objects
// differ from its state, ErrFaulty when one is faulty, and ErrStalled when
// one's hydration stalled (only, when nothing else is wrong): `migrate
// status --check` for monitoring.
func (r *StatusReport) Check() error {
	var broken, stalled []error
	for _, s := range r.Volumes {
		if len(s.Drift) > 0 {
			broken = append(broken, fmt.Errorf("volume %s: %w: %s", s.Name, ErrDrift, strings.Join(s.Drift, "; ")))
		}
		if s.Step == StepFaulty {
			broken = append(broken, fmt.Errorf("volume %s: %w", s.Name, ErrFaulty))
		}
		if !s.StalledSince.IsZero() {
			why := ""
			if s.Unreadable != nil {
				why = ": " + s.Unreadable.Summary()
			}
			stalled = append(stalled, fmt.Errorf("volume %s: %w: hydration stalled since %s%s", s.Name, ErrStalled, s.StalledSince.Format(time.RFC3339), why))
		}
	}
	// Drift and faults first: they decide the exit code.
	if len(broken) > 0 {
		return errors.Join(append(broken, stalled...)...)
	}
	return errors.Join(stalled...)
}

// readLive fills s with what the kernel says now: the clone's progress
// and the export's sessions (Live false, with the reason, when they
// cannot be read).
func (p *Planner) readLive(ctx context.Context, v *Volume, s *VolumeStatus, now time.Time) {
	var liveErrs []string
	if o := v.object(ObjDevice); o != nil && !v.Linear && !v.rolledBack() && !o.Pending {
		st, err := p.o.Ports.Mapper.CloneStatus(ctx, DMName(v.Spec.Name))
		if err != nil {
			liveErrs = append(liveErrs, "clone status: "+err.Error())
		} else {
			s.Progress = nextProgress(v.Progress, st, now)
			if v.Progress.Rate > 0 {
				// Keep the controller's smoothed rate; recompute ETA.
				s.Progress.Rate = v.Progress.Rate
				s.Progress = etaOnly(s.Progress)
			}
		}
	}
	if o := v.object(ObjExport); o != nil && !o.Pending {
		sess, err := p.o.Ports.Exporter.Sessions(ctx, v.Spec.Export.IQN)
		if err != nil {
			liveErrs = append(liveErrs, "sessions: "+err.Error())
		} else if sess != nil {
			s.Sessions = sess
		}
	}
	if !p.o.DryRun {
		var err error
		if s.Unreachable, s.SessionTimeouts, err = p.sessionHealth(ctx, v); err != nil {
			liveErrs = append(liveErrs, "sessions to the arrays: "+err.Error())
		}
	}
	if len(liveErrs) > 0 {
		s.Live, s.LiveError = false, strings.Join(liveErrs, "; ")
	}
}

func etaOnly(pr Progress) Progress {
	pr.ETA = 0
	if pr.Rate > 0 && pr.TotalRegions > pr.HydratedRegions {
		left := float64(pr.TotalRegions-pr.HydratedRegions) * float64(pr.RegionSectors*512)
		pr.ETA = Duration(left / pr.Rate * 1e9)
	}
	return pr
}

// strays lists dm devices with lunferry's prefix and targets named like a
// volume's export that no volume's state records. With only some volumes
// loaded (partial: a status of named volumes), a dm device named after a
// volume whose state was not loaded is left to that volume's status: its
// state is not read, so whether it records the device is not known here.
// A device named after no volume at all is a stray either way.
func (p *Planner) strays(ctx context.Context, all []*Volume, partial bool) ([]string, error) {
	var others map[string]bool
	if partial {
		names, err := p.store.Names()
		if err != nil {
			return nil, err
		}
		others = map[string]bool{}
		for _, n := range names {
			others[n] = true
		}
		for _, v := range all {
			delete(others, v.Spec.Name)
		}
	}
	var out []string
	known := map[string]bool{}
	exports := map[string]bool{}
	for _, v := range all {
		if v.object(ObjDevice) != nil {
			known[DMName(v.Spec.Name)] = true
		}
		if v.object(ObjEra) != nil {
			known[EraName(v.Spec.Name)] = true
		}
		if v.object(ObjExport) != nil {
			exports[v.Spec.Export.IQN] = true
		}
	}
	if names, err := p.o.Ports.Mapper.List(ctx); err == nil {
		for _, n := range names {
			if strings.HasPrefix(n, Prefix) && !known[n] && !others[volumeOfDevice(n)] {
				out = append(out, "dm device "+n)
			}
		}
	}
	if iqns, err := p.o.Ports.Exporter.List(ctx); err == nil {
		for _, iqn := range iqns {
			if exports[iqn] {
				continue
			}
			for _, v := range all {
				if v.Spec.Export.IQN == iqn {
					out = append(out, "LIO target "+iqn)
				}
			}
		}
	}
	return out, nil
}

// volumeOfDevice is the volume a dm device of lunferry's is named after
// (DMName, EraName).
func volumeOfDevice(dev string) string {
	return strings.TrimSuffix(strings.TrimPrefix(dev, Prefix), ".era")
}
