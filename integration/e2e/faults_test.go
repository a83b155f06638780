package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// outageTime is how long TestArrayUnreachable keeps an array unreachable.
const outageTime = 30 * time.Second

// outageResult is what the host saw while an array was unreachable.
type outageResult struct {
	role string
	// down is how long the array was unreachable.
	down time.Duration
	// probe read a block of a file written before cutover every 100 ms.
	probe lab.ProbeStats
	// writer is the writer session that ran through the outage.
	writer lab.WriterStats
	// resumed is the time from the array's return to the next hydration
	// progress.
	resumed time.Duration
	// status is the last line `lunferry migrate status` printed during
	// the outage.
	status string
}

func (o outageResult) String() string {
	return fmt.Sprintf("%s array unreachable %s: host probe %d reads, %d errors, longest read %.1fs; writer %d files, %d errors, %d mismatches, longest write+fsync %.1fs, longest read-back %.1fs; hydration resumed %.1fs after the array came back; status during the outage: %q",
		o.role, o.down.Round(100*time.Millisecond), o.probe.Reads, o.probe.Errors, o.probe.MaxStall.Seconds(), o.writer.Files, o.writer.Errors, o.writer.Mismatches,
		o.writer.MaxWriteMs/1000, o.writer.MaxReadMs/1000, o.resumed.Seconds(), o.status)
}

// TestFaultsToHandover: mid-hydration (throttled, `lunferry run` going),
// the old array, then the new array, is unreachable for 30 s (its target
// portal group disabled: sessions dropped, logins refused) while the
// host's writer writes and reads back through the proxy and a probe reads
// a block of a file written before cutover every 100 ms. The host must see
// no I/O error, only waits (measured), and hydration must resume by itself
// once the array is back. Then hydration completes and lunferry is killed
// at every crash point of finalize and handover (crashFinalizeHandover,
// sharing this migration to save lab time); the last handover checks the
// data on the new LUN alone (no write lost).
func TestFaultsToHandover(t *testing.T) {
	vmtest.Require(t)
	start := time.Now()
	const oldSize, newSize = 48 << 20, 64 << 20
	s := newScene(t, oldSize, newSize)
	s.hostOnOld(16, 8<<20)
	sp := s.spec("fault1", "old", "new")
	sp.Old.SizeBytes = oldSize
	// Slow enough that both outages find regions left to hydrate (the
	// host's writes hydrate regions too, at their own pace).
	sp.Throttle = mustSchedule(t, "256KiB/s")
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover"), s.hook("record-old-sum")}, PostCutover: []string{s.hook("post-cutover")},
		Timeout: plan.Duration(2 * time.Minute)}
	s.handoverHooks(&sp.Hooks)
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", sp.Name)
	s.cutover(sp.Name)
	run := s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", sp.Name)
	waitFor(t, time.Minute, "hydration to begin", func() bool { return s.status(sp.Name).Progress.HydratedRegions > 0 })

	var res []outageResult
	for _, role := range []string{"old", "new"} {
		o := s.outage(sp, role)
		s.logf("%s", o)
		res = append(res, o)
	}
	s.mustLF("migrate", "throttle", sp.Name, "unlimited")
	waitFor(t, 3*time.Minute, "hydration to complete", func() bool { return s.status(sp.Name).Step == plan.StepHydrated })
	s.logf("lunferry run:\n%s", run.stop())
	faults := time.Since(start)
	crashes := s.crashFinalizeHandover(sp)
	for _, o := range res {
		t.Logf("RESULT %s", o)
	}
	st := s.writerStats()
	t.Logf("RESULT crash finalize/handover: %s; writer %d files, %d rewrites (filesystem full), 0 errors, longest write %.0f ms, read %.0f ms; test %.0fs (%.0fs to hydrated)",
		crashes, st.Files, st.Rewrites, st.MaxWriteMs, st.MaxReadMs, time.Since(start).Seconds(), faults.Seconds())
}

// outage makes the array of role unreachable for outageTime while the
// host's writer (a session of its own) and a probe run, then brings it
// back and waits for hydration to progress again. It fails the test on any
// error the host saw.
func (s *scene) outage(sp plan.Spec, role string) outageResult {
	s.t.Helper()
	o := outageResult{role: role}
	a := s.cfg.Arrays[role]
	if st := s.status(sp.Name); st.Progress.TotalRegions != 0 && st.Progress.HydratedRegions == st.Progress.TotalRegions {
		s.t.Fatalf("hydration completed before the %s array's outage (%d regions): nothing would show it resume; lower the test's throttle", role, st.Progress.HydratedRegions)
	}
	s.stopWriter()
	s.labCmd("writer", "start")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probed := make(chan lab.ProbeStats, 1)
	go func() {
		st, err := lab.Probe(ctx, filepath.Join(s.cfg.Host.Mount, "base", "big.dat"), 256<<10, 100*time.Millisecond)
		if err != nil {
			st.Errors, st.LastError = st.Errors+1, err.Error()
		}
		probed <- st
	}()
	time.Sleep(2 * time.Second)
	if err := a.SetEnabled(false); err != nil {
		s.t.Fatal(err)
	}
	down := time.Now()
	s.logf("%s array unreachable (target portal group disabled)", role)
	time.Sleep(outageTime - 5*time.Second)
	r := s.lunferry("migrate", "status", sp.Name)
	o.status = lastLine(r.stdout)
	time.Sleep(5*time.Second - r.took)
	if err := a.SetEnabled(true); err != nil {
		s.t.Fatal(err)
	}
	back := time.Now()
	o.down = back.Sub(down)
	s.logf("%s array back; status during the outage (exit %d): %s", role, r.code, strings.TrimSpace(r.stdout))
	if !strings.Contains(r.stdout, role+" array unreachable since ") {
		s.t.Errorf("status during the outage does not say the %s array is unreachable since when `lunferry run` saw it:\n%s", role, r.stdout)
	}
	was := s.status(sp.Name).Progress.HydratedRegions
	waitFor(s.t, 2*time.Minute, "hydration to resume after the "+role+" array came back", func() bool {
		return s.status(sp.Name).Progress.HydratedRegions > was
	})
	if u := s.status(sp.Name).Unreachable; len(u) != 0 {
		s.t.Errorf("status after the %s array came back and hydration resumed still lists unreachable arrays: %+v", role, u)
	}
	o.resumed = time.Since(back)
	n := s.writerStats().Writes()
	waitFor(s.t, time.Minute, "the host's writer to write after the "+role+" array came back", func() bool { return s.writerStats().Writes() >= n+3 })
	cancel()
	o.probe = <-probed
	o.writer = s.stopWriter()
	s.labCmd("writer", "start")
	if o.probe.Errors != 0 || o.writer.Errors != 0 || o.writer.Mismatches != 0 {
		s.t.Errorf("the host saw I/O errors while the %s array was unreachable: probe %q, writer %q (%+v)",
			role, o.probe.LastError, o.writer.LastError, o.writer)
	}
	return o
}
