package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vm"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// Reboot scenario: the host side (TestRebootMidHydration) boots the lab
// twice over the same three virtio disks; the guest side (TestRebootGuest,
// the same test binary run in the guest) plays one boot, chosen by
// EnvPhase.
const (
	// EnvPhase selects the guest side's boot: "boot1" or "boot2".
	EnvPhase = "LUNFERRY_E2E_PHASE"
	// EnvHydratedBefore carries to boot 2 the hydrated regions seen in
	// boot 1 two seconds before the power cut.
	EnvHydratedBefore = "LUNFERRY_E2E_HYDRATED_BEFORE"
	powerCutMarker    = "E2E-POWER-CUT-NOW"
	rebootOldSize     = 64 << 20
	rebootNewSize     = 96 << 20
	rebootStateSize   = 128 << 20
)

var progressRE = regexp.MustCompile(`E2E-PROGRESS before=(\d+) at-cut=(\d+) total=(\d+)`)

// logWriter copies guest output to the test log line by line.
type logWriter struct {
	t   *testing.T
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Logf("guest: %s", strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

// TestRebootMidHydration is lab test 2: boot 1 prepares, cuts over and
// starts a slow hydration while the host writes; the VM is powered off
// (qemu killed: a real power cut) mid-hydration. Boot 2 re-creates the
// arrays, runs `lunferry restore`, checks that hydration continues from the
// progress kept in the metadata (not from zero), completes it, finalizes,
// hands over (the host moves to the new array, the proxy lets go) and
// checks the data like test 1 on the new LUN alone.
func TestRebootMidHydration(t *testing.T) {
	vmtest.RequireLab(t)
	bin := t.TempDir()
	start := time.Now()
	if err := buildBinaries(bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built lunferry and lunferry-lab in %.1fs", time.Since(start).Seconds())
	disks := rebootDisks(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	boot := func(phase string, extraEnv []string, kill func(string) bool) *vm.Result {
		env := append(os.Environ(), EnvPhase+"="+phase, EnvBin+"="+bin)
		res, err := vm.Run(context.Background(), vm.Options{
			Disks:    disks,
			Command:  []string{exe, "-test.run=^TestRebootGuest$", "-test.v", "-test.count=1"},
			Env:      append(env, extraEnv...),
			Output:   &logWriter{t: t},
			KillWhen: kill,
			Timeout:  15 * time.Minute,
		})
		if err != nil {
			t.Fatalf("%s: %v", phase, err)
		}
		t.Logf("%s: %s", phase, res.Banner())
		if len(res.KernelErrors) > 0 {
			t.Errorf("%s: the lab kernel reported errors:\n%s", phase, strings.Join(res.KernelErrors, "\n"))
		}
		return res
	}
	res := boot("boot1", nil, func(line string) bool { return strings.Contains(line, powerCutMarker) })
	if !res.PowerCut {
		t.Fatalf("boot 1 ended (exit %d) without reaching the power cut", res.ExitCode)
	}
	m := progressRE.FindStringSubmatch(string(res.Output))
	if m == nil {
		t.Fatal("boot 1 printed no progress before the power cut")
	}
	t.Logf("power cut with %s of %s regions hydrated (%s two seconds before)", m[2], m[3], m[1])
	res = boot("boot2", []string{EnvHydratedBefore + "=" + m[1]}, nil)
	if res.ExitCode != 0 {
		t.Fatalf("boot 2: exit %d", res.ExitCode)
	}
}

// TestRebootGuest is the guest side of TestRebootMidHydration; it runs
// only when that test boots the lab.
func TestRebootGuest(t *testing.T) {
	vmtest.Require(t)
	phase := os.Getenv(EnvPhase)
	if phase == "" {
		t.Skip("guest side of TestRebootMidHydration: runs only when that test boots the lab (make test-vm pass 2)")
	}
	s := stateDiskScene(t, phase == "boot1")
	sp := s.spec("vol2", "old", "new")
	sp.Old.SizeBytes = rebootOldSize
	sp.Throttle = mustSchedule(t, "2MiB/s")
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover")}, PostCutover: []string{s.hook("post-cutover")},
		Timeout: plan.Duration(2 * time.Minute)}
	s.handoverHooks(&sp.Hooks)
	if phase == "boot1" {
		rebootBoot1(t, s, sp)
		return
	}
	s.cleanupVolume(sp)
	rebootBoot2(t, s, sp)
}

func rebootBoot1(t *testing.T, s *scene, sp plan.Spec) {
	s.hostOnOld(32, 4<<20)
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", sp.Name)
	s.cutover(sp.Name)
	s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", sp.Name)
	waitFor(t, 5*time.Minute, "hydration past 10% with host writes through the proxy", func() bool {
		st := s.status(sp.Name)
		ws, _ := lab.LoadStats(s.cfg.StatsFile(2))
		return st.Progress.TotalRegions > 0 && st.Progress.HydratedRegions*10 > st.Progress.TotalRegions && ws.Writes() >= 10
	})
	before := s.status(sp.Name)
	time.Sleep(2 * time.Second) // dm-clone commits its metadata every second
	at := s.status(sp.Name)
	if at.Step != plan.StepHydrating || at.Progress.HydratedRegions >= at.Progress.TotalRegions {
		t.Fatalf("before the power cut: step %s, %d of %d regions", at.Step, at.Progress.HydratedRegions, at.Progress.TotalRegions)
	}
	fmt.Printf("E2E-PROGRESS before=%d at-cut=%d total=%d\n", before.Progress.HydratedRegions, at.Progress.HydratedRegions, at.Progress.TotalRegions)
	fmt.Println(powerCutMarker)
	os.Stdout.Sync()
	time.Sleep(10 * time.Minute) // the host kills the VM
	t.Fatal("still running 10 minutes after asking for the power cut")
}

func rebootBoot2(t *testing.T, s *scene, sp plan.Spec) {
	before, err := strconv.ParseUint(os.Getenv(EnvHydratedBefore), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", EnvHydratedBefore, err)
	}
	// The arrays came back with the lab (sceneFrom); the proxy restores.
	r := s.mustLF("restore")
	s.logf("restore (%.1fs):\n%s", r.took.Seconds(), r.stdout)
	st := s.status(sp.Name)
	s.logf("after restore: step %s, %d of %d regions hydrated (%d two seconds before the power cut)",
		st.Step, st.Progress.HydratedRegions, st.Progress.TotalRegions, before)
	if st.Step != plan.StepHydrating || st.Progress.HydratedRegions == 0 || st.Progress.HydratedRegions < before {
		t.Fatalf("hydration did not continue from where it stopped: step %s, %d regions hydrated after restore, %d before the power cut",
			st.Step, st.Progress.HydratedRegions, before)
	}
	// The host (rebooted too) logs in to the proxy again; mounting
	// replays its journal.
	s.labCmd("host", "mount", "proxy")
	s.labCmd("writer", "start")
	s.mustLF("migrate", "throttle", sp.Name, "unlimited")
	run := s.startLF("run", "--interval", "1s")
	waitFor(t, 5*time.Minute, "hydration to complete", func() bool { return s.status(sp.Name).Step == plan.StepHydrated })
	s.logf("lunferry run:\n%s", run.stop())
	written := s.writerStats().Writes()
	r = s.mustLF("migrate", "finalize", sp.Name)
	s.logf("finalize: %s", strings.TrimSpace(r.stdout))
	waitFor(t, time.Minute, "the writer to write after finalize", func() bool { return s.writerStats().Writes() > written+10 })
	// The runbook's handover: the hooks move the host (and its writer)
	// to the new array, the proxy lets go; then the data checks on the
	// new LUN alone.
	s.handover(sp)
	total := s.writerStats()
	s.logf("writer: %d sessions, %d files, %d errors, %d mismatches", total.Session, total.Files, total.Errors, total.Mismatches)
	if total.Errors != 0 || total.Mismatches != 0 {
		t.Fatalf("writer: %+v", total)
	}
}
