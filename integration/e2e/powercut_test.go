package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/internal/crashpoint"
	"github.com/lunferry/lunferry/plan"
)

// Power cut scenario: the host side (TestPowerCutCutoverFinalize) boots
// the lab three times over the same three virtio disks; the guest side
// (TestPowerCutGuest) plays one boot, chosen by EnvPowerCut.
const (
	// EnvPowerCut selects the guest side's boot: "cutover", "finalize" or
	// "after".
	EnvPowerCut = "LUNFERRY_E2E_POWERCUT"
	// powerCutAt prefixes the line the guest prints when lunferry waits
	// at its crash point: the host cuts the power on it.
	powerCutAt = "E2E-POWER-CUT-AT "
	// The crash points the power is cut at: the clone built but not yet
	// exported (cutover); the table swapped live to linear and the old
	// LUN let go (finalize).
	cutoverCutPoint  = "created:device"
	finalizeCutPoint = "pop:old-login"
)

// TestPowerCutCutoverFinalize: the power is cut (qemu killed) while
// lunferry waits at a crash point inside cutover (boot 1) and inside
// finalize with the host writing through the proxy (boot 2). Each next
// boot brings the arrays back, restores and reruns the command; boot 3
// then hands over and checks the data on the new LUN alone.
func TestPowerCutCutoverFinalize(t *testing.T) {
	vmtest.RequireLab(t)
	bin := t.TempDir()
	start := time.Now()
	if err := buildBinaries(bin); err != nil {
		t.Fatal(err)
	}
	if err := buildCrash(bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built lunferry, lunferry-lab and %s in %.1fs", crashName, time.Since(start).Seconds())
	runBoots(t, bin, rebootDisks(t), "TestPowerCutGuest", EnvPowerCut, 15*time.Minute,
		labBoot{"cutover", powerCutAt + cutoverCutPoint}, labBoot{"finalize", powerCutAt + finalizeCutPoint}, labBoot{name: "after"})
	t.Logf("RESULT power cut inside cutover (%s) and finalize (%s): 3 boots, %.0fs", cutoverCutPoint, finalizeCutPoint, time.Since(start).Seconds())
}

// rebootDisks makes the three sparse disk images of a multi-boot
// scenario: old LUN, new LUN, state (lab records and lunferry's state).
func rebootDisks(t *testing.T) []string {
	dir := t.TempDir()
	var disks []string
	for _, d := range []struct {
		name string
		size int64
	}{{"old.img", rebootOldSize}, {"new.img", rebootNewSize}, {"state.img", rebootStateSize}} {
		p := filepath.Join(dir, d.name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, d.size); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, p)
	}
	return disks
}

// TestPowerCutGuest is the guest side of TestPowerCutCutoverFinalize; it
// runs only when that test boots the lab.
func TestPowerCutGuest(t *testing.T) {
	vmtest.Require(t)
	phase := os.Getenv(EnvPowerCut)
	if phase == "" {
		t.Skip("guest side of TestPowerCutCutoverFinalize: runs only when that test boots the lab (make test-vm pass 2)")
	}
	s, sp := powerCutScene(t, phase == "cutover")
	switch phase {
	case "cutover":
		s.hostOnOld(32, 4<<20)
		if r := s.addVolumes(sp); r.code != 0 {
			t.Fatalf("volume add: %s", r)
		}
		s.mustLF("migrate", "prepare", sp.Name)
		s.powerCutAt(cutoverCutPoint, "migrate", "cutover", sp.Name)
	case "finalize":
		powerCutBoot2(t, s, sp)
	default:
		s.cleanupVolume(sp)
		powerCutBoot3(t, s, sp)
	}
}

// powerCutScene builds the scene on the state disk (stateDiskScene) and
// the test's spec.
func powerCutScene(t *testing.T, first bool) (*scene, plan.Spec) {
	s := stateDiskScene(t, first)
	sp := s.spec("cut1", "old", "new")
	sp.Old.SizeBytes = rebootOldSize
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover"), s.hook("record-old-sum")},
		PostCutover: []string{s.hook("post-cutover")}, Timeout: plan.Duration(2 * time.Minute)}
	s.handoverHooks(&sp.Hooks)
	return s, sp
}

// powerCutAt runs the crashpoints build of lunferry with args until it
// waits at crash point point, then prints the line the host cuts the power
// on, and waits for it.
func (s *scene) powerCutAt(point string, args ...string) {
	s.t.Helper()
	cmd := exec.Command(crashBinary(s.t), append([]string{"--state-dir", s.state}, args...)...)
	cmd.Env = append(s.env(), crashpoint.EnvAt+"="+point, crashpoint.EnvWait+"=1")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(5 * time.Minute)
	for !strings.Contains(out.String(), crashpoint.Reached+point) {
		select {
		case err := <-done:
			s.t.Fatalf("lunferry %s ended (%v) before crash point %s:\n%s", strings.Join(args, " "), err, point, out)
		case <-deadline:
			s.t.Fatalf("lunferry %s did not reach crash point %s in 5 minutes:\n%s", strings.Join(args, " "), point, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.logf("lunferry %s waits at crash point %s:\n%s", strings.Join(args, " "), point, out)
	fmt.Println(powerCutAt + point)
	os.Stdout.Sync()
	time.Sleep(10 * time.Minute) // the host kills the VM
	s.t.Fatal("still running 10 minutes after asking for the power cut")
}

// powerCutBoot2 follows the power cut inside cutover: restore, the rerun
// of cutover serves the host, hydration, then finalize to its power cut
// with the host writing through the proxy.
func powerCutBoot2(t *testing.T, s *scene, sp plan.Spec) {
	r := s.mustLF("restore")
	s.logf("restore after the power cut inside cutover (%.1fs):\n%s", r.took.Seconds(), r.stdout)
	if st := s.status(sp.Name); st.Step != plan.StepCuttingOver {
		t.Fatalf("after restore: step %s, want %s", st.Step, plan.StepCuttingOver)
	}
	s.checkAfterCrash(sp, plan.StepCuttingOver, "restore after the power cut inside cutover")
	s.cutover(sp.Name)
	s.checkAfterCrash(sp, plan.StepCutOver, "cutover rerun after the power cut")
	s.checkOldUnchanged("cutover rerun after the power cut")
	s.mustLF("migrate", "start", sp.Name)
	waitFor(t, 5*time.Minute, "hydration to complete", func() bool {
		p := s.status(sp.Name).Progress
		return p.TotalRegions > 0 && p.HydratedRegions == p.TotalRegions
	})
	n := s.writerStats().Writes()
	waitFor(t, time.Minute, "the host's writer to write through the proxy", func() bool { return s.writerStats().Writes() >= n+5 })
	s.powerCutAt(finalizeCutPoint, "migrate", "finalize", sp.Name)
}

// powerCutBoot3 follows the power cut inside finalize: `lunferry run`
// restores the proxy (linear over the new LUN, the old array not needed),
// the rebooted host logs in and mounts again and its writer writes, the
// rerun of finalize completes; then handover and the data checks on the
// new LUN alone.
func powerCutBoot3(t *testing.T, s *scene, sp plan.Spec) {
	run := s.startLF("run", "--interval", "1s")
	waitFor(t, 2*time.Minute, "lunferry run to restore the export", func() bool {
		_, err := os.Stat(filepath.Join(lab.DefaultConfigFS, "iscsi", sp.Export.IQN))
		return err == nil
	})
	t0 := time.Now()
	s.labCmd("host", "mount", "proxy")
	s.labCmd("writer", "start")
	n := s.writerStats().Writes()
	waitFor(t, time.Minute, "the host's writer to write through the proxy", func() bool { return s.writerStats().Writes() >= n+5 })
	s.logf("host served again %.1fs after logging in", time.Since(t0).Seconds())
	s.checkAfterCrash(sp, plan.StepFinalizing, "run after the power cut inside finalize")
	if table := dmTable(t, plan.DMName(sp.Name)); !strings.Contains(table, " linear ") {
		t.Fatalf("device table after the power cut past the swap: %s", table)
	}
	r := s.mustLF("migrate", "finalize", sp.Name)
	s.logf("finalize rerun: %s", strings.TrimSpace(r.stdout))
	s.checkAfterCrash(sp, plan.StepFinalized, "finalize rerun after the power cut")
	s.checkOldUnchanged("finalize rerun after the power cut")
	s.logf("lunferry run:\n%s", run.stop())
	_, verified := s.handover(sp)
	st := s.writerStats()
	if st.Errors != 0 || st.Mismatches != 0 {
		t.Fatalf("writer: %+v", st)
	}
	s.logf("writer: %d sessions, %d files, 0 errors; new LUN alone: %s", st.Session, st.Files, verified)
}
