package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestOnlineCutoverThroughTheCLI: with the online hooks in the runbook,
// --online cuts over online, prints the takeover's hold, and status shows
// the phase and the fence.
func TestOnlineCutoverThroughTheCLI(t *testing.T) {
	c := newCLI(t)
	rb := filepath.Join(c.dir, "runbook.json")
	hooks := `"addPaths": ["/hooks/add"], "removeDirectPaths": ["/hooks/del"], "restoreDirectPaths": ["/hooks/back"]`
	vol := fmt.Sprintf(`{"name": "vol1", "old": {"portal": %q, "iqn": %q, "lun": 1}, "new": {"portal": %q, "iqn": %q, "lun": 3},
		"hostIQN": %q, "export": {"iqn": %q, "portals": ["192.0.2.1:3260"]}, "hooks": {%s}}`,
		oldPortal, oldIQN, newPortal, newIQN, hostIQN, exportIQN, hooks)
	require.NoError(t, os.WriteFile(rb, []byte(`{"volumes": [`+vol+`]}`), 0o600))
	c.ok("volume", "add", "--runbook", rb)
	c.ok("migrate", "prepare", "vol1")
	require.Contains(t, c.ok("migrate", "cutover", "--help"), "--no-fence")

	out := c.ok("migrate", "cutover", "--online", "vol1")
	require.Contains(t, out, "volume vol1 cut over online: the host was never stopped; the takeover held its I/O for")
	var rep plan.StatusReport
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "migrate", "status", "vol1")), &rep))
	require.Equal(t, plan.PhaseTakenOver, rep.Volumes[0].OnlinePhase)
	require.True(t, rep.Volumes[0].Fenced)
	require.Equal(t, plan.StepCutOver, rep.Volumes[0].Step)
}

// TestOnlineCutoverNeedsItsHooks: --online on a volume without the hooks
// that move the host's paths is refused as bad input, nothing changed.
func TestOnlineCutoverNeedsItsHooks(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	code, _, errs := c.run("migrate", "cutover", "--online", "vol1")
	require.Equal(t, ExitUsage, code)
	require.Contains(t, errs, "addPaths, removeDirectPaths and restoreDirectPaths")
	require.Contains(t, c.ok("migrate", "status", "vol1"), "prepared")
}
