package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// TestRollbackThenAbort: the way back after cutover with nothing lost, as
// an admin runs it. Mid-hydration, with the host's writer writing ext4
// files through the proxy and `lunferry run` going, `migrate rollback`
// copies the host's writes back to the old LUN and swaps live to linear
// over it; the writer goes on without an error. Then the runbook's abort
// gives the host the old array directly: every file of the manifest is
// there (none written through the proxy missing) with its content, and
// e2fsck finds the filesystem clean.
func TestRollbackThenAbort(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 48 << 20, 64 << 20
	s := newScene(t, oldSize, newSize)
	s.hostOnOld(24, 4<<20)

	sp := s.spec("back1", "old", "new")
	sp.Old.SizeBytes = oldSize
	sp.Throttle = mustSchedule(t, "1MiB/s")
	sp.Hooks = plan.Hooks{
		PreCutover:  []string{s.hook("pre-cutover"), s.hook("record-old-sum")},
		PostCutover: []string{s.hook("post-cutover")},
		PostAbort:   []string{s.hook("post-abort")},
		Timeout:     plan.Duration(2 * time.Minute),
	}
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", sp.Name)
	s.cutover(sp.Name)
	run := s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", sp.Name)
	waitFor(t, 2*time.Minute, "hydration and host writes through the proxy", func() bool {
		return s.status(sp.Name).Progress.HydratedRegions > 0 && s.writerStats().Writes() >= 40
	})

	dry := s.mustLF("migrate", "rollback", "--dry-run", sp.Name)
	s.logf("rollback --dry-run: %s", strings.TrimSpace(dry.stdout))
	if st := s.status(sp.Name); st.Step != plan.StepHydrating {
		t.Fatalf("after the dry run: step %s, want hydrating", st.Step)
	}

	// The host keeps writing through the rollback.
	r := s.mustLF("migrate", "rollback", sp.Name)
	s.logf("rollback took %.1fs: %s", r.took.Seconds(), strings.TrimSpace(r.stdout))
	st := s.status(sp.Name)
	if st.Step != plan.StepRolledBack {
		t.Fatalf("after rollback: step %s, want %s", st.Step, plan.StepRolledBack)
	}
	old := s.showVolume(sp.Name).OldDisk
	if table := dmTable(t, plan.DMName(sp.Name)); !strings.Contains(table, " linear ") || old == nil {
		t.Fatalf("device table after rollback: %s (old disk %+v), want linear over the old LUN", table, old)
	}
	n := s.writerStats().Writes()
	waitFor(t, time.Minute, "the host's writer to write through the proxy to the old LUN", func() bool { return s.writerStats().Writes() > n+10 })
	s.logf("lunferry run:\n%s", run.stop())

	// The runbook quiesces the host, aborts, and the post-abort hook puts
	// it on the old array directly.
	proxyWrites := s.stopWriter()
	if proxyWrites.Errors != 0 || proxyWrites.Mismatches != 0 {
		t.Fatalf("writer through the proxy: %+v", proxyWrites)
	}
	s.labCmd("host", "unmount")
	ab := s.mustLF("migrate", "abort", sp.Name)
	s.logf("abort: %s", strings.TrimSpace(ab.stdout))
	if !strings.Contains(ab.stdout, "holds every write") || strings.Contains(ab.stdout, "ONLY on the new LUN") {
		t.Errorf("abort after rollback does not say the old LUN holds every write:\n%s", ab)
	}
	if st := s.status(sp.Name); st.Step != plan.StepAborted {
		t.Errorf("after abort: step %s", st.Step)
	}
	back := s.stopWriter()
	if back.Errors != 0 || back.Mismatches != 0 || back.Forgotten != 0 {
		t.Fatalf("writer back on the old array: %+v (forgotten: files of the manifest missing on the old LUN)", back)
	}
	if err := s.cfg.Host.Unmount(); err != nil { // the session stays
		t.Fatal(err)
	}
	disk := s.cfg.Host.SessionDisk(sp.Old.IQN)
	if disk == "" {
		t.Fatalf("no disk behind the host's session to %s", sp.Old.IQN)
	}
	out := s.labCmd("verify", "-dev", "/dev/"+disk) // e2fsck -fn, then every file's checksum
	if !strings.Contains(out, "verified") {
		t.Fatalf("verify: %s", out)
	}
	s.logf("old LUN alone (/dev/%s): %s", disk, lastLine(out))
	entries, err := lab.ReadManifest(s.cfg.Manifest())
	if err != nil {
		t.Fatal(err)
	}
	through := 0
	for _, e := range entries {
		if e.Session == 2 {
			through++
		}
	}
	if through == 0 {
		t.Fatal("the writer wrote nothing through the proxy")
	}
	t.Logf("RESULT rollback mid-hydration with the host writing: %.1fs; %s; %d files written through the proxy, all on the old LUN alone; writer 0 errors, longest write %.0f ms",
		r.took.Seconds(), lastLine(r.stdout), through, proxyWrites.MaxWriteMs)
	s.labCmd("host", "unmount")
}
