package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
	"github.com/lunferry/lunferry/plan/plantest"
)

const (
	oldPortal = "192.0.2.10:3260"
	oldIQN    = "iqn.2001-05.com.oldarray:tgt1"
	newPortal = "192.0.2.20:3260"
	newIQN    = "iqn.2010-01.com.newarray:tgt9"
	hostIQN   = "iqn.1994-05.com.redhat:apphost"
	exportIQN = "iqn.2026-11.io.lunferry.proxy:vol1"
)

// cli runs lunferry in-process against a fake kernel and a temp state dir.
type cliEnv struct {
	t   *testing.T
	dir string
	k   *plantest.Kernel
}

func newCLI(t *testing.T) *cliEnv {
	k := plantest.New()
	k.LUNs[plantest.Key(oldPortal, oldIQN, 1)] = plantest.LUNInfo{Size: 1 << 30, ID: "old"}
	k.LUNs[plantest.Key(newPortal, newIQN, 3)] = plantest.LUNInfo{Size: 2 << 30, ID: "new"}
	k.HydrationStep = 4096
	return &cliEnv{t: t, dir: t.TempDir(), k: k}
}

func (c *cliEnv) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	ports := c.k.Ports()
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		ports: func(globals) plan.Ports { return ports }}
	code = run(context.Background(), e, append([]string{"lunferry", "--state-dir", c.dir, "--lock-wait", "0"}, args...))
	return code, out.String(), errb.String()
}

func (c *cliEnv) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	require.Equal(c.t, 0, code, "lunferry %v: stdout %s stderr %s", args, out, errs)
	return out
}

var addArgs = []string{"volume", "add", "--name", "vol1",
	"--old-portal", oldPortal, "--old-iqn", oldIQN, "--old-lun", "1",
	"--new-portal", newPortal, "--new-iqn", newIQN, "--new-lun", "3",
	"--host-iqn", hostIQN, "--export-iqn", exportIQN, "--export-portal", "192.0.2.1:3260",
	"--throttle", "100MiB/s"}

func TestHelpListsExitCodes(t *testing.T) {
	c := newCLI(t)
	out := c.ok("--help")
	require.Contains(t, out, "EXIT CODES")
	require.Contains(t, out, "5    state directory locked")
	for _, cmd := range []string{"doctor", "volume", "migrate", "restore", "run", "completion"} {
		require.Contains(t, out, cmd)
	}
	out = c.ok("migrate", "--help")
	for _, sub := range []string{"prepare", "cutover", "start", "throttle", "pause", "resume", "status", "finalize", "abort", "rollback"} {
		require.Contains(t, out, sub)
	}
}

func TestWholeMigrationThroughTheCLI(t *testing.T) {
	c := newCLI(t)
	require.Contains(t, c.ok(addArgs...), "added volume vol1")
	require.Contains(t, c.ok("volume", "list"), "vol1    new")
	require.Contains(t, c.ok("migrate", "prepare", "vol1"), "volume vol1 prepared: size 1GiB")
	out := c.ok("migrate", "cutover", "vol1")
	require.Contains(t, out, "time the tool spent in the window:")
	out = c.ok("migrate", "status")
	require.Contains(t, out, "cut-over")
	require.Contains(t, out, hostIQN)

	code, _, errs := c.run("migrate", "finalize", "vol1")
	require.Equal(t, ExitNotReady, code)
	require.Contains(t, errs, "hydration has not started: run `lunferry migrate start vol1`")

	out = c.ok("migrate", "start", "--follow", "--finalize", "--interval", "1ms", "vol1")
	// Throttled: hydration runs under the loop that --follow runs.
	require.Contains(t, out, "hydration runs under `lunferry run`")
	require.Contains(t, out, "finalized")

	var rep plan.StatusReport
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "migrate", "status", "vol1")), &rep))
	require.Len(t, rep.Volumes, 1)
	require.Equal(t, plan.StepFinalized, rep.Volumes[0].Step)
	require.Equal(t, 100.0, rep.Volumes[0].Percent)
	require.NotNil(t, rep.Volumes[0].Window)

	code, _, errs = c.run("migrate", "abort", "vol1")
	require.Equal(t, ExitRefused, code)
	require.Contains(t, errs, "nothing to roll back to")
	code, _, errs = c.run("volume", "remove", "vol1")
	require.Equal(t, ExitRefused, code)
	require.Contains(t, errs, "--forget")
	c.ok("volume", "remove", "--forget", "vol1")
}

func TestAbortSaysWhereHostWritesAre(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	c.ok("migrate", "cutover", "vol1")
	c.ok("migrate", "start", "vol1")
	c.ok("migrate", "pause", "vol1")
	out := c.ok("migrate", "abort", "vol1")
	require.Contains(t, out, "writes the host made after cutover exist ONLY on the new LUN")
	var rep plan.AbortReport
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "migrate", "abort", "vol1")), &rep))
	require.True(t, rep.HostWritesLost)
	require.Nil(t, c.k.Device(plan.DMName("vol1")))
	c.ok("volume", "remove", "vol1")
	require.Contains(t, c.ok("volume", "list"), "no volumes")
}

func TestExitCodesForBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c *cliEnv)
		args  []string
		code  int
		msg   string
	}{
		{"unknown flag", nil, []string{"volume", "add", "--bogus"}, ExitUsage, "flag provided but not defined"},
		{"missing volume", nil, []string{"migrate", "prepare"}, ExitUsage, "missing VOLUME"},
		{"unknown volume", nil, []string{"migrate", "prepare", "nope"}, ExitUsage, "no such volume"},
		{"bad host IQN", nil, append(append([]string{}, addArgs[:len(addArgs)-2]...), "--host-iqn", "iqn.2024-01.lab:x"), ExitUsage, "is not a valid iSCSI name"},
		{"bad throttle", nil, append(append([]string{}, addArgs...), "--throttle", "fast"), ExitUsage, "--throttle"},
		{"new LUN smaller", func(c *cliEnv) {
			c.k.LUNs[plantest.Key(newPortal, newIQN, 3)] = plantest.LUNInfo{Size: 1 << 29, ID: "new"}
			c.ok(addArgs...)
		}, []string{"migrate", "prepare", "vol1"}, ExitRefused, "smaller than the old LUN's 1073741824 bytes (1GiB)"},
		{"unreachable portal", func(c *cliEnv) {
			c.k.Unreachable[newPortal] = true
			c.ok(addArgs...)
		}, []string{"migrate", "prepare", "vol1"}, ExitISCSI, "portal unreachable"},
		{"login refused", func(c *cliEnv) {
			c.k.RefuseLogin[newPortal+","+newIQN] = true
			c.ok(addArgs...)
		}, []string{"migrate", "prepare", "vol1"}, ExitISCSI, "login refused"},
		{"LUN used twice", func(c *cliEnv) { c.ok(addArgs...) },
			append(append([]string{}, addArgs...), "--name", "vol2", "--export-iqn", "iqn.2026-11.io.lunferry.proxy:vol2"), ExitRefused, "a LUN can take part in one migration only"},
		{"hook fails", func(c *cliEnv) {
			args := append(append([]string{}, addArgs...), "--pre-cutover-hook", "/hooks/quiesce")
			c.ok(args...)
			c.ok("migrate", "prepare", "vol1")
			c.k.HookFail["/hooks/quiesce"] = errorf("%w: exit status 2", plan.ErrHook)
		}, []string{"migrate", "cutover", "vol1"}, ExitHook, "pre-cutover hook /hooks/quiesce"},
		{"unknown dm device", func(c *cliEnv) {
			c.ok(addArgs...)
			c.ok("migrate", "prepare", "vol1")
			c.k.AddDevice("lunferry-vol1")
		}, []string{"migrate", "cutover", "vol1"}, ExitRefused, "neither adopt nor delete"},
		{"corrupt state", func(c *cliEnv) {
			c.ok(addArgs...)
			require.NoError(c.t, os.WriteFile(filepath.Join(c.dir, "volumes", "vol1.json"), []byte("{"), 0o600))
		}, []string{"migrate", "status"}, ExitRefused, "state file corrupt"},
		{"newer state", func(c *cliEnv) {
			c.ok(addArgs...)
			require.NoError(c.t, os.WriteFile(filepath.Join(c.dir, "volumes", "vol1.json"), []byte(`{"version": 2}`), 0o600))
		}, []string{"volume", "list"}, ExitRefused, "use the newer lunferry"},
		{"lock held", func(c *cliEnv) {
			c.ok(addArgs...)
			l, err := plan.AcquireLock(context.Background(), c.dir, 0)
			require.NoError(c.t, err)
			c.t.Cleanup(func() { l.Release() })
		}, []string{"migrate", "prepare", "vol1"}, ExitLocked, "held by pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			if tc.setup != nil {
				tc.setup(c)
			}
			code, out, errs := c.run(tc.args...)
			require.Equal(t, tc.code, code, "stdout %s stderr %s", out, errs)
			require.Contains(t, errs, tc.msg)
		})
	}
}

func TestRunbookAndJSON(t *testing.T) {
	c := newCLI(t)
	rb := filepath.Join(c.dir, "rb.json")
	require.NoError(t, os.WriteFile(rb, []byte(`{"volumes": [
	 {"name": "a", "old": {"portal": "192.0.2.10", "iqn": "`+oldIQN+`", "lun": 1},
	  "new": {"portal": "192.0.2.20", "iqn": "`+newIQN+`", "lun": 3}, "hostIQN": "`+hostIQN+`",
	  "export": {"iqn": "iqn.2026-11.io.lunferry.proxy:a", "portals": ["192.0.2.1:3260"]}},
	 {"name": "b", "old": {"portal": "192.0.2.10", "iqn": "`+oldIQN+`", "lun": 2},
	  "new": {"portal": "192.0.2.20", "iqn": "`+newIQN+`", "lun": 4}, "hostIQN": "`+hostIQN+`",
	  "export": {"iqn": "iqn.2026-11.io.lunferry.proxy:b", "portals": ["192.0.2.1:3260"]}, "throttle": "20MiB/s"}
	]}`), 0o600))
	c.ok("volume", "add", "--runbook", rb)
	var vols []plan.Volume
	require.NoError(t, json.Unmarshal([]byte(c.ok("--json", "volume", "list")), &vols))
	require.Len(t, vols, 2)
	require.Equal(t, "b", vols[1].Spec.Name)
	require.Equal(t, "20MiB/s", vols[1].Spec.Throttle.String())
	c.ok("migrate", "throttle", "a", "mon-fri 08:00-18:00=50MiB/s; *=unlimited")
	out := c.ok("volume", "show", "a")
	require.Contains(t, out, "mon-fri 08:00-18:00=50MiB/s")
}

func TestDryRunPrintsKernelActions(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	// With --dry-run the CLI uses the printing ports, not the fake.
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code := run(context.Background(), e, []string{"lunferry", "--state-dir", c.dir, "--dry-run", "migrate", "cutover", "vol1"})
	require.Equal(t, 0, code, errb.String())
	s := out.String()
	require.Contains(t, s, "[dry-run] iscsiadm -m node -T "+oldIQN+" -p "+oldPortal+" -I lunferry --login")
	require.Contains(t, s, "[dry-run] ioctl BLKROSET 1")
	require.Contains(t, s, "[dry-run] dm create lunferry-vol1 uuid LUNFERRY-lunferry-vol1 table: 0 2097152 clone ")
	require.Contains(t, s, " 128 1 no_hydration")
	require.Contains(t, s, "[dry-run] configfs: create target "+exportIQN)
	require.Contains(t, s, "acl "+hostIQN+" only")
	code, out2, _ := c.run("--json", "volume", "show", "vol1")
	require.Equal(t, 0, code)
	require.Contains(t, out2, `"step": "prepared"`, "dry run saved nothing")
}

func TestDoctor(t *testing.T) {
	c := newCLI(t)
	sys := t.TempDir()
	dev := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "config", "target")
	nameFile := filepath.Join(t.TempDir(), "initiatorname.iscsi")
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		doctor: func(o *kernel.DoctorOptions) {
			o.Runner = fakeRunner{}
			o.DMTargets = func(context.Context) ([]string, error) { return []string{"linear", "striped"}, nil }
			o.Euid = 0
			o.InitiatorNameFile = nameFile
		}}
	args := []string{"lunferry", "--state-dir", c.dir, "--sys-root", sys, "--dev-root", dev, "--configfs-root", cfg, "doctor"}
	code := run(context.Background(), e, args)
	require.Equal(t, ExitPreflight, code)
	for _, fix := range []string{"fix device-mapper: modprobe dm_mod", "fix LIO iSCSI target: modprobe iscsi_target_mod",
		"fix configfs: mount -t configfs configfs", "fix loop devices: modprobe loop", "fix initiator name: write InitiatorName="} {
		require.Contains(t, out.String(), fix)
	}

	// Everything present.
	for _, d := range []string{"class/misc/device-mapper", "module/dm_clone", "module/dm_era", "module/target_core_iblock",
		"module/iscsi_target_mod", "module/iscsi_tcp"} {
		require.NoError(t, os.MkdirAll(filepath.Join(sys, d), 0o755))
	}
	require.NoError(t, os.MkdirAll(cfg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dev, "loop-control"), nil, 0o600))
	require.NoError(t, os.WriteFile(nameFile, []byte("## comment\nInitiatorName=iqn.2026-11.io.lunferry.lab:proxy\n"), 0o600))
	out.Reset()
	code = run(context.Background(), e, append(args[:len(args)-1], "--json", "doctor"))
	require.Equal(t, 0, code, out.String())
	var checks []kernel.Check
	require.NoError(t, json.Unmarshal(out.Bytes(), &checks))
	for _, ch := range checks {
		require.True(t, ch.OK, ch.Name)
	}
}

type fakeRunner struct{}

func (fakeRunner) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, []byte, int, error) {
	if len(args) > 1 && args[1] == "session" {
		return nil, []byte("iscsiadm: No active sessions."), 21, nil
	}
	return []byte("iscsiadm version 2.1.8"), nil, 0, nil
}

func TestCompletion(t *testing.T) {
	c := newCLI(t)
	require.Contains(t, c.ok("completion", "bash"), "complete -o bashdefault -o default -F _lunferry lunferry")
	require.Contains(t, c.ok("completion", "zsh"), "#compdef lunferry")
	code, _, _ := c.run("completion", "fish")
	require.Equal(t, ExitUsage, code)
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func TestStatusOnATerminal(t *testing.T) {
	c := newCLI(t)
	c.ok(addArgs...)
	c.ok("migrate", "prepare", "vol1")
	c.ok("migrate", "cutover", "vol1")
	c.ok("migrate", "start", "vol1")
	// Throttled, so start leaves hydration to `lunferry run`: progress as
	// a round of it would have made.
	c.k.SetHydrated(plan.DMName("vol1"), 4096)
	c.k.AddDevice("lunferry-stray")
	var out, errb bytes.Buffer
	ports := c.k.Ports()
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, isTTY: true,
		ports: func(globals) plan.Ports { return ports }}
	code := run(context.Background(), e, []string{"lunferry", "--state-dir", c.dir, "migrate", "status"})
	require.Equal(t, 0, code, errb.String())
	s := out.String()
	require.Contains(t, s, "VOLUME")
	require.Contains(t, s, "hydrating")
	require.Regexp(t, `\[#+\.+\]\s+\d+\.\d%`, s)
	require.Contains(t, s, "100MiB/s")
	require.Contains(t, s, hostIQN)
	require.Contains(t, s, "warning: dm device lunferry-stray carries lunferry's name but no volume's state knows it")
}

// TestTotalRateZeroRefused: a budget of 0 used to mean "no budget" (every
// volume at full speed); 0 means held now, so it is refused with the fix.
func TestTotalRateZeroRefused(t *testing.T) {
	c := newCLI(t)
	code, _, errs := c.run("--total-rate", "0", "migrate", "status")
	require.Equal(t, ExitUsage, code)
	require.Contains(t, errs, "lunferry migrate pause")
}
