package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

func TestHandoverThroughTheCLI(t *testing.T) {
	c := newCLI(t)
	// Real executables: the dry run below checks them.
	move, unmap := filepath.Join(c.dir, "move-host"), filepath.Join(c.dir, "unmap-proxy")
	for _, h := range []string{move, unmap} {
		require.NoError(t, os.WriteFile(h, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	}
	c.ok(append(addArgs, "--pre-handover-hook", move, "--post-handover-hook", unmap)...)
	var v plan.Volume
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "volume", "show", "vol1")), &v))
	require.Equal(t, []string{move}, v.Spec.Hooks.PreHandover)
	require.Equal(t, []string{unmap}, v.Spec.Hooks.PostHandover)
	require.Contains(t, c.ok("migrate", "--help"), "handover")
	require.Contains(t, c.ok("migrate", "handover", "--help"), "--force")

	code, _, errs := c.run("migrate", "handover", "vol1")
	require.Equal(t, ExitRefused, code)
	require.Contains(t, errs, "handover follows finalize")

	c.ok("migrate", "prepare", "vol1")
	c.ok("migrate", "cutover", "vol1")
	code, _, errs = c.run("migrate", "handover", "vol1")
	require.Equal(t, ExitRefused, code)
	require.Contains(t, errs, "run `lunferry migrate finalize vol1`")
	c.ok("migrate", "start", "--follow", "--finalize", "--interval", "1ms", "vol1")
	out := c.ok("migrate", "status")
	require.Contains(t, out, "SERVING")
	require.Contains(t, out, "proxy (linear over the new LUN)")
	require.Contains(t, out, "`lunferry migrate handover vol1` moves it to the new array")

	// A dry run prints the kernel actions (through the printing ports, not
	// the fake) and changes nothing.
	var dout, derr bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &dout, stderr: &derr}
	code = run(context.Background(), e, []string{"lunferry", "--state-dir", c.dir, "--dry-run", "migrate", "handover", "vol1"})
	require.Equal(t, 0, code, derr.String())
	for _, want := range []string{
		"run pre-handover hook " + move,
		"would refuse to go on while an initiator is logged in to " + exportIQN,
		"[dry-run] configfs: tear down target " + exportIQN + " and storage object lunferry-vol1",
		"[dry-run] dm remove lunferry-vol1",
		"[dry-run] iscsiadm -m node -T " + newIQN + " -p " + newPortal + " -I lunferry --logout",
		"run post-handover hook " + unmap,
		"would be handed over",
	} {
		require.Contains(t, dout.String(), want)
	}
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "volume", "show", "vol1")), &v))
	require.Equal(t, plan.StepFinalized, v.Step, "dry run saved nothing")
	_, ok := c.k.Export(exportIQN)
	require.True(t, ok)

	// The host is still logged in to the proxy (the fake's host logs in
	// to every export): not ready, nothing of the proxy removed.
	code, _, errs = c.run("migrate", "handover", "vol1")
	require.Equal(t, ExitNotReady, code)
	require.Contains(t, errs, "host "+hostIQN+" still has a session on the proxy's export "+exportIQN)
	require.Contains(t, errs, "--force")
	_, ok = c.k.Export(exportIQN)
	require.True(t, ok)
	out = c.ok("migrate", "status", "vol1")
	require.Contains(t, out, "handing-over (interrupted)")
	require.Contains(t, out, hostIQN)

	// The host moved: handover completes.
	c.k.HostLogsIn = false
	out = c.ok("migrate", "handover", "vol1")
	require.Contains(t, out, "volume vol1 handed over: the host uses "+newIQN+" lun 3 on the new array directly")
	_, ok = c.k.Export(exportIQN)
	require.False(t, ok)
	require.Nil(t, c.k.Device(plan.DMName("vol1")))
	require.False(t, c.k.Session(newPortal+","+newIQN))
	out = c.ok("migrate", "status")
	require.Contains(t, out, "handed-over")
	require.Contains(t, out, "new array")
	require.Contains(t, out, "`lunferry volume remove vol1` forgets it")
	var rep plan.StatusReport
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "migrate", "status", "vol1")), &rep))
	require.Equal(t, plan.StepHandedOver, rep.Volumes[0].Step)
	require.Equal(t, "new array", rep.Volumes[0].Serving)
	require.False(t, rep.Volumes[0].HandedOverAt.IsZero())
	c.ok("migrate", "handover", "vol1") // idempotent
	require.Contains(t, c.ok("volume", "show", "vol1"), "the host uses the new LUN directly")

	code, _, errs = c.run("migrate", "abort", "vol1")
	require.Equal(t, ExitRefused, code)
	require.Contains(t, errs, "nothing to roll back")
	require.Contains(t, c.ok("volume", "remove", "vol1"), "volume vol1 removed")
}

func TestHandoverForceThroughTheCLI(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	c.ok("migrate", "cutover", "vol1")
	c.ok("migrate", "start", "--follow", "--finalize", "--interval", "1ms", "vol1")
	code, _, _ := c.run("migrate", "handover", "vol1")
	require.Equal(t, ExitNotReady, code)
	_, errs := func() (string, string) { _, o, e := c.run("migrate", "handover", "--force", "vol1"); return o, e }()
	require.Contains(t, errs, "--force: tearing export "+exportIQN+" down under "+hostIQN)
	var v plan.Volume
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "volume", "show", "vol1")), &v))
	require.Equal(t, plan.StepHandedOver, v.Step)
}
