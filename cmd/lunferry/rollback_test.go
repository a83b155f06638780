package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

func TestRollbackThroughTheCLI(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	c.ok("migrate", "cutover", "vol1")
	c.k.HostWrite(plan.EraName("vol1"), 0, 3<<20)

	out := c.ok("migrate", "rollback", "--dry-run", "vol1")
	require.Contains(t, out, "would be rolled back from cut-over")
	require.Contains(t, out, "3MiB the host wrote since era")
	require.Contains(t, out, "nothing was changed")
	require.Empty(t, c.k.CopyBacks)
	require.Contains(t, c.ok("migrate", "status", "vol1"), "cut-over")

	code, _, errs := c.run("migrate", "rollback", "--rate", "0", "vol1")
	require.Equal(t, ExitUsage, code, errs)

	out = c.ok("migrate", "rollback", "--rate", "20MiB/s", "vol1")
	require.Contains(t, out, "volume vol1 rolled back")
	require.Contains(t, out, "host I/O held")
	require.Equal(t, clone.Rate(20<<20), c.k.CopyBacks[0].Rate, "the rounds are paced")
	require.Equal(t, clone.Unlimited, c.k.CopyBacks[len(c.k.CopyBacks)-1].Rate, "the final round is not")
	out = c.ok("migrate", "status", "vol1")
	require.Contains(t, out, "rolled-back")
	require.Contains(t, out, "linear over the old LUN")
	require.Contains(t, out, "vol1: rollback from cut-over: 2 rounds, 3MiB copied to the old LUN, host I/O held")

	code, _, errs = c.run("migrate", "finalize", "vol1")
	require.Equal(t, ExitRefused, code)
	require.Contains(t, errs, "the volume was rolled back")
	require.Contains(t, c.ok("migrate", "abort", "vol1"), "holds every write")

	c.ok("volume", "remove", "vol1")
	c.ok(addArgs...)
	code, _, errs = c.run("migrate", "rollback", "vol1")
	require.Equal(t, ExitRefused, code)
	require.Contains(t, errs, "nothing to roll back")
}
