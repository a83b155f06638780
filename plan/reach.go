package plan

import (
	"context"
	"fmt"
	"time"
)

// Unreachable is an array the proxy holds a session to that is not logged
// in: the connection was lost and iscsid is recovering it, while I/O to
// the array's LUN waits (up to the session's replacement timeout).
type Unreachable struct {
	// Array is "old" or "new".
	Array string `json:"array"`
	// Target is the session's "portal,iqn".
	Target string `json:"target"`
	// State is the session's state (e.g. "FAILED").
	State string `json:"state"`
	// Since is when `lunferry run` first saw it so; zero when no run has
	// seen it (it is unreachable now, since an unknown time).
	Since time.Time `json:"since,omitzero"`
	// Replacement is the session's replacement timeout in force: how long
	// its I/O waits before it fails.
	Replacement Duration `json:"replacement"`
}

// arraySession is one of a volume's sessions to an array.
type arraySession struct {
	array string
	lun   LUN
}

// arraySessions lists the sessions to the arrays v's state records as
// made (pending ones excluded).
func (v *Volume) arraySessions() []arraySession {
	var out []arraySession
	for _, a := range []struct {
		kind ObjectKind
		s    arraySession
	}{{ObjOldLogin, arraySession{"old", v.Spec.Old}}, {ObjNewLogin, arraySession{"new", v.Spec.New}}} {
		if o := v.object(a.kind); o != nil && !o.Pending {
			out = append(out, a.s)
		}
	}
	return out
}

// sessionHealth reads v's array sessions: those not logged in, and how
// the timeouts in force differ from the spec's ("old: ..." lines). A
// missing session is drift, reported elsewhere.
func (p *Planner) sessionHealth(ctx context.Context, v *Volume) (down []Unreachable, timeouts []string, err error) {
	for _, a := range v.arraySessions() {
		t := targetOf(a.lun)
		s, ok, err := p.o.Ports.Initiator.SessionState(ctx, t)
		if err != nil {
			return nil, nil, fmt.Errorf("plan: volume %s: read session to %s: %w", v.Spec.Name, t, err)
		}
		if !ok {
			continue
		}
		if !s.LoggedIn() {
			down = append(down, Unreachable{Array: a.array, Target: t.String(), State: s.State,
				Since: v.Unreachable[a.array], Replacement: Duration(s.RecoveryTimeout)})
		}
		for _, d := range t.Timeouts.Differences(s) {
			timeouts = append(timeouts, a.array+" ("+t.String()+"): "+d)
		}
	}
	return down, timeouts, nil
}

// watchSessions records in v when an array's session is first seen not
// logged in, and forgets it once the session is back (Run's rounds), so
// that status can say since when an array is unreachable.
func (p *Planner) watchSessions(ctx context.Context, v *Volume) {
	if p.o.DryRun {
		return
	}
	down, _, err := p.sessionHealth(ctx, v)
	if err != nil {
		p.logf("%v", err)
		return
	}
	now := p.o.Now().UTC()
	changed, seen := false, map[string]bool{}
	for _, u := range down {
		seen[u.Array] = true
		if _, ok := v.Unreachable[u.Array]; ok {
			continue
		}
		if v.Unreachable == nil {
			v.Unreachable = map[string]time.Time{}
		}
		v.Unreachable[u.Array], changed = now, true
		p.logf("volume %s: %s array unreachable (session to %s %s): its I/O waits up to %s, then fails", v.Spec.Name, u.Array, u.Target, u.State, u.Replacement.D())
	}
	for a, since := range v.Unreachable {
		if !seen[a] {
			delete(v.Unreachable, a)
			changed = true
			p.logf("volume %s: %s array reachable again after %s", v.Spec.Name, a, now.Sub(since).Round(time.Second))
		}
	}
	if len(v.Unreachable) == 0 {
		v.Unreachable = nil
	}
	if changed {
		if err := p.save(v); err != nil {
			p.logf("volume %s: %v", v.Spec.Name, err)
		}
	}
}
