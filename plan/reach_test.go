package plan_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestUnreachableSince: an array whose session went into recovery is
// "unreachable now" to a status without run, "since T" once a run round
// saw it (T that round's time, kept by later rounds), and gone from status
// and state once the session is back.
func TestUnreachableSince(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	e.clocked(&now, e.k.Ports())
	p := e.p
	e.add(spec("vol1"))
	_, err := p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	_, err = p.Cutover(ctx, "vol1")
	require.NoError(t, err)

	status := func() plan.VolumeStatus {
		rep, err := p.Status(ctx, "vol1")
		require.NoError(t, err)
		return rep.Volumes[0]
	}
	require.Empty(t, status().Unreachable)

	e.k.SessionDown[oldPortal] = true
	s := status()
	require.Equal(t, []plan.Unreachable{{Array: "old", Target: oldPortal + "," + oldIQN, State: "FAILED",
		Replacement: plan.Duration(120 * time.Second)}}, s.Unreachable, "no run saw it: unreachable now")

	seen := now
	_, err = p.Tick(ctx, false)
	require.NoError(t, err)
	now = now.Add(30 * time.Second)
	_, err = p.Tick(ctx, false)
	require.NoError(t, err)
	s = status()
	require.Len(t, s.Unreachable, 1)
	require.Equal(t, seen, s.Unreachable[0].Since, "since the first round that saw it")
	require.Contains(t, e.log.String(), "volume vol1: old array unreachable (session to "+oldPortal+","+oldIQN+" FAILED)")

	delete(e.k.SessionDown, oldPortal)
	_, err = p.Tick(ctx, false)
	require.NoError(t, err)
	require.Empty(t, status().Unreachable)
	v, err := p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Nil(t, v.Unreachable, "cleared from the state")
	require.Contains(t, e.log.String(), "volume vol1: old array reachable again after 30s")
}

// TestSessionTimeoutsDiffer: status reports a session whose timeouts in
// force are not the spec's (made before the spec changed); nothing logs
// it out.
func TestSessionTimeoutsDiffer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Empty(t, rep.Volumes[0].SessionTimeouts, "logged in with the spec's")

	// The same state, read by a lunferry whose spec asks for more.
	st := plan.Store{Dir: e.dir}
	v, err := st.Load("vol1")
	require.NoError(t, err)
	v.Spec.New.SessionTimeouts = &plan.SessionTimeouts{Replacement: plan.Duration(300 * time.Second)}
	require.NoError(t, st.Save(v))
	rep, err = e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, []string{"new (" + newPortal + "," + newIQN + "): replacement_timeout 120s live, 300s wanted"}, rep.Volumes[0].SessionTimeouts)
	for _, c := range e.k.Calls() {
		require.False(t, strings.HasPrefix(c, "Logout"), "status logged out: %s", c)
	}
}

// TestUnreachableOldArrayNotProbed: while the old array's session is in
// recovery, status and run's rounds do not send the old LUN a SCSI command
// (a PERSISTENT RESERVE IN for the fence waited up to the replacement
// timeout in the lab, stretching a 30 s outage past it into host I/O
// errors), and the fence does not count as gone.
func TestUnreachableOldArrayNotProbed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.NotNil(t, v.Objects, "cut over")

	e.k.SessionDown[oldPortal] = true
	e.k.ResetCalls()
	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Empty(t, rep.Volumes[0].Drift)
	require.Len(t, rep.Volumes[0].Unreachable, 1)
	_, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	for _, c := range e.k.Calls() {
		require.False(t, strings.HasPrefix(c, "Reservations"), "the unreachable old LUN was sent %s", c)
	}
}
