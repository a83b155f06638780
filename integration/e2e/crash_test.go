package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// TestCrashCutoverAbort kills lunferry (SIGKILL, crashpoints build) at
// every crash point of cutover, each death followed by a rerun (which dies
// at the next point) and a `lunferry restore` between two deaths; the
// cutover killed at its last point is rolled back by `lunferry migrate
// abort`, itself killed at every crash point of abort the same way, with
// an `abort --cancel` and a restore between two deaths. After every death
// and recovery: the step, no drift or stray, the kernel objects match the
// state's undo stack, the old array's backing store is as at cutover, the
// host's writer saw no error and goes on whenever it runs; at the end
// nothing of the proxy is left and the host is back on the old LUN.
func TestCrashCutoverAbort(t *testing.T) {
	vmtest.Require(t)
	start := time.Now()
	const oldSize, newSize = 32 << 20, 48 << 20
	s := newScene(t, oldSize, newSize)
	s.hostOnOld(16, 2<<20)
	sp := s.spec("crash1", "old", "new")
	sp.Old.SizeBytes = oldSize
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover"), s.hook("record-old-sum")},
		PostCutover: []string{s.hook("post-cutover")}, PostAbort: []string{s.hook("record-old-sum"), s.hook("post-abort")},
		Timeout: plan.Duration(2 * time.Minute)}
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", sp.Name)

	cut := s.crashPoints("cutover", sp.Name)
	cutTook := s.crashChain(sp, "cutover", plan.StepCuttingOver, cut,
		map[string]func(){"created:device": s.restoreBetween(sp, plan.StepCuttingOver)})
	if hs := s.cfg.Host.Sessions(); len(hs) != 1 || hs[0] != sp.Export.IQN {
		t.Fatalf("host sessions after cutover's last crash point: %v, want only the export", hs)
	}

	s.quiesceForAbort()
	ab := s.crashPoints("abort", sp.Name)
	abTook := s.crashChain(sp, "abort", plan.StepAborting, ab, map[string]func(){
		"trying:aborting": func() {
			s.mustLF("migrate", "abort", "--cancel", sp.Name)
			s.checkAfterCrash(sp, plan.StepCuttingOver, "abort cancelled after a crash")
		},
		"pop:device": s.restoreBetween(sp, plan.StepAborting),
	})
	s.mustLF("migrate", "abort", sp.Name)
	s.checkAborted(sp, "abort rerun")
	t.Logf("RESULT crash cutover/abort: %d cutover points %v (%.1fs of runs), then abort of the killed cutover: %d abort points %v (%.1fs of runs); recoveries: rerun after each point, restore (after created:device, pop:device), abort --cancel (after trying:aborting), migrate abort (after cutover's done:cut-over); writer %d files, 0 errors; test %.0fs",
		len(cut), cut, cutTook.Seconds(), len(ab), ab, abTook.Seconds(), s.writerStats().Files, time.Since(start).Seconds())
}

// quiesceForAbort does what an admin's runbook does before abort: stop
// the host's writer and log it out of the proxy. The files it wrote
// through the proxy exist only on the new LUN: they leave the manifest,
// since the host goes back to the old LUN.
func (s *scene) quiesceForAbort() {
	s.t.Helper()
	st := s.stopWriter()
	s.labCmd("host", "unmount")
	if err := lab.DropSessions(s.cfg.Manifest(), st.Session); err != nil {
		s.t.Fatal(err)
	}
}

// checkAborted checks an aborted volume: nothing of the proxy left, the
// old LUN as it was at cutover, the host back on it (post-abort hook).
func (s *scene) checkAborted(sp plan.Spec, when string) {
	s.t.Helper()
	s.checkAfterCrash(sp, plan.StepAborted, when)
	s.checkOldUnchanged(when)
	if left := s.proxyObjects(sp); len(left) > 0 {
		s.t.Fatalf("%s: left of the proxy:\n%s", when, strings.Join(left, "\n"))
	}
	if _, err := os.Stat(filepath.Join(s.dir, "old-post-abort.sum")); err != nil {
		s.t.Fatalf("%s: the post-abort hooks did not run: %v", when, err)
	}
	if hs := s.cfg.Host.Sessions(); len(hs) != 1 || hs[0] != sp.Old.IQN {
		s.t.Fatalf("%s: host sessions %v, want only the old array", when, hs)
	}
}

// crashFinalizeHandover kills lunferry at every crash point of finalize
// of a hydrated volume (the host writing through the proxy all along),
// each death followed by a rerun, with a `lunferry restore` after the
// death past the live swap; then of handover the same way, the last run
// by s.handover with its data checks on the new LUN alone. The checks of
// checkAfterCrash follow every death. It returns a summary.
func (s *scene) crashFinalizeHandover(sp plan.Spec) string {
	s.t.Helper()
	fin := s.crashPoints("finalize", sp.Name)
	finTook := s.crashChain(sp, "finalize", plan.StepFinalizing, fin,
		map[string]func(){"pop:old-login": s.restoreBetween(sp, plan.StepFinalizing)})
	s.mustLF("migrate", "finalize", sp.Name)
	s.checkAfterCrash(sp, plan.StepFinalized, "finalize rerun")
	s.checkOldUnchanged("finalize rerun")
	if table := dmTable(s.t, plan.DMName(sp.Name)); !strings.Contains(table, " linear ") {
		s.t.Fatalf("device table after finalize: %s", table)
	}
	ho := s.crashPoints("handover", sp.Name)
	hoTook := s.crashChain(sp, "handover", plan.StepHandingOver, ho, nil)
	_, verified := s.handover(sp)
	return fmt.Sprintf("%d finalize points %v (%.1fs of runs), %d handover points %v (%.1fs of runs), recoveries: rerun after each point, restore (after pop:old-login); new LUN alone: %s",
		len(fin), fin, finTook.Seconds(), len(ho), ho, hoTook.Seconds(), verified)
}
