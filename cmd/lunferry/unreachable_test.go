package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestStatusSaysArrayUnreachable: while the proxy's session to the old
// array is in recovery, status says so, "now" before a run round saw it
// and "since" after; --json carries the same; nothing once it is back.
func TestStatusSaysArrayUnreachable(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	c.ok("migrate", "cutover", "vol1")
	c.k.SessionDown[oldPortal] = true
	out := c.ok("migrate", "status")
	require.Contains(t, out, "vol1: old array unreachable now (no `lunferry run` has seen it yet): session to "+oldPortal+","+oldIQN+" FAILED; I/O to it waits up to 2m0s")

	c.ok("migrate", "start", "--follow", "--interval", "1ms", "vol1")
	out = c.ok("migrate", "status")
	require.Contains(t, out, "vol1: old array unreachable since ")
	var rep plan.StatusReport
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "migrate", "status", "vol1")), &rep))
	require.Len(t, rep.Volumes[0].Unreachable, 1)
	require.False(t, rep.Volumes[0].Unreachable[0].Since.IsZero())

	delete(c.k.SessionDown, oldPortal)
	require.NotContains(t, c.ok("migrate", "status"), "unreachable")
}
