package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

func mustSchedule(t testing.TB, s string) clone.Schedule {
	t.Helper()
	sch, err := clone.ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// hostOnOld plays the state before the migration: the host formats the old
// LUN, mounts it, writes the initial files (checksums in the manifest) and
// starts its writer.
func (s *scene) hostOnOld(files int, big int64) {
	s.t.Helper()
	dev := strings.TrimSpace(s.labCmd("host", "mkfs", "old"))
	s.labCmd("host", "mount", "old")
	out := s.labCmd("populate", "-files", fmt.Sprint(files), "-big", fmt.Sprint(big))
	s.labCmd("writer", "start")
	s.logf("host on the old array (%s): %s", dev, strings.TrimSpace(out))
}

// stopWriter stops the host's writer and returns its session's stats.
func (s *scene) stopWriter() lab.WriterStats {
	s.t.Helper()
	var st lab.WriterStats
	if err := json.Unmarshal([]byte(s.labCmd("writer", "stop")), &st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

var windowRE = regexp.MustCompile(`time the tool spent in the window: (\S+)`)

// cutover runs `lunferry migrate cutover` and returns the tool's window
// time it reports.
func (s *scene) cutover(name string) time.Duration {
	s.t.Helper()
	r := s.mustLF("migrate", "cutover", name)
	m := windowRE.FindStringSubmatch(r.stdout)
	if m == nil {
		s.t.Fatalf("cutover did not report the time the tool spent in the window:\n%s", r)
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		s.t.Fatalf("cutover window time %q: %v", m[1], err)
	}
	s.logf("cutover took %.1fs; %s", r.took.Seconds(), strings.TrimSpace(r.stdout))
	v := s.showVolume(name)
	if v.Window == nil || v.Window.Tool.D() <= 0 {
		s.t.Fatalf("volume record has no window times: %+v", v.Window)
	}
	return d
}

func (s *scene) showVolume(name string) plan.Volume {
	s.t.Helper()
	r := s.mustLF("--json", "volume", "show", name)
	var v plan.Volume
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		s.t.Fatalf("volume show --json: %v\n%s", err, r.stdout)
	}
	return v
}

// regionBytes is the bytes per dm-clone region of a status.
func regionBytes(st plan.VolumeStatus) float64 { return float64(st.Progress.RegionSectors * 512) }

// TestFullMigration is lab test 1: a full migration of an ext4 volume with
// known content while the host's writer keeps writing and checksumming
// through its session: prepare, cutover (hooks quiesce the host, remap the
// old LUN, log the host in to the proxy), a `lunferry restore` on the live
// objects (must be invisible to the host), hydration throttled then
// unthrottled, finalize (live swap to linear under the writer); then
// `lunferry migrate handover` (refused while a pre-handover hook leaves the
// host on the export; then the lab's hooks move the host to the new array)
// retires the proxy, and the new LUN alone, reached directly, passes
// e2fsck -fn and every file, old and new, matches its checksum.
func TestFullMigration(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 64 << 20, 96 << 20
	s := newScene(t, oldSize, newSize)
	s.hostOnOld(48, 8<<20)

	sp := s.spec("vol1", "old", "new")
	sp.Old.SizeBytes = oldSize // mapped to the proxy only at cutover
	sp.Throttle = mustSchedule(t, "4MiB/s")
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover")}, PostCutover: []string{s.hook("post-cutover")},
		Timeout: plan.Duration(2 * time.Minute)}
	s.handoverHooks(&sp.Hooks)
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	r := s.mustLF("migrate", "prepare", "vol1")
	s.logf("prepare: %s", strings.TrimSpace(r.stdout))
	if st := s.status("vol1"); st.Step != plan.StepPrepared {
		t.Fatalf("after prepare: step %s", st.Step)
	}

	window := s.cutover("vol1")
	st := s.status("vol1")
	if st.Step != plan.StepCutOver || !slices.Contains(st.Sessions, s.cfg.Host.IQN) {
		t.Fatalf("after cutover: step %s, export sessions %v (want the host %s)", st.Step, st.Sessions, s.cfg.Host.IQN)
	}
	if acls, _ := s.cfg.Arrays["old"].ACLList(); !slices.Equal(acls, []string{s.cfg.ProxyIQN}) {
		t.Fatalf("old array ACLs after cutover: %v, want only the proxy", acls)
	}
	if hs := s.cfg.Host.Sessions(); !slices.Equal(hs, []string{s.cfg.ExportIQN}) {
		t.Fatalf("host sessions after cutover: %v, want only the export", hs)
	}
	if table := dmTable(t, plan.DMName("vol1")); !strings.Contains(table, " clone ") {
		t.Fatalf("device table after cutover: %s", table)
	}
	hostDisk := "/dev/" + s.cfg.Host.SessionDisk(s.cfg.ExportIQN)
	// Handover before the new LUN holds all the data is refused.
	r = s.lunferry("migrate", "handover", "vol1")
	if r.code != exitRefused || !strings.Contains(r.stderr, "run `lunferry migrate finalize vol1`") {
		t.Fatalf("handover right after cutover: want exit %d naming finalize: %s", exitRefused, r)
	}
	s.logf("handover right after cutover: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	s.logf("after cutover: proxy %s; host's disk %s", cacheFlags(plan.DMName("vol1")), cacheFlags(hostDisk))

	// `lunferry restore` (which `lunferry run` also does first) on live
	// objects must be invisible to the host: checked by the writer's
	// error count at the end.
	r = s.mustLF("restore")
	s.logf("restore while live (%.1fs): %s", r.took.Seconds(), strings.TrimSpace(r.stdout))

	// Hydration, throttled to 4 MiB/s by `lunferry run`.
	run := s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", "vol1")
	time.Sleep(3 * time.Second) // let the controller settle
	a := s.status("vol1")
	t0 := time.Now()
	time.Sleep(6 * time.Second)
	b := s.status("vol1")
	dt := time.Since(t0).Seconds()
	throttled := float64(b.Progress.HydratedRegions-a.Progress.HydratedRegions) * regionBytes(b) / dt
	s.logf("throttled hydration: %d -> %d of %d regions in %.1fs: %.2f MiB/s (throttle 4 MiB/s; status says %.2f MiB/s, ETA %s)",
		a.Progress.HydratedRegions, b.Progress.HydratedRegions, b.Progress.TotalRegions, dt, throttled/(1<<20),
		b.Progress.Rate/(1<<20), b.Progress.ETA.D())
	if b.Step != plan.StepHydrating || b.Progress.HydratedRegions == 0 || b.Progress.HydratedRegions >= b.Progress.TotalRegions {
		t.Fatalf("throttled hydration: step %s, %d of %d regions", b.Step, b.Progress.HydratedRegions, b.Progress.TotalRegions)
	}
	if throttled <= 0 || throttled > 2.5*4*(1<<20) {
		t.Errorf("throttled hydration ran at %.2f MiB/s, throttle is 4 MiB/s", throttled/(1<<20))
	}

	// Unthrottled to the end.
	s.mustLF("migrate", "throttle", "vol1", "unlimited")
	t1, h1 := time.Now(), b.Progress.HydratedRegions
	waitFor(t, 3*time.Minute, "hydration to complete", func() bool { return s.status("vol1").Step == plan.StepHydrated })
	st = s.status("vol1")
	full := float64(st.Progress.TotalRegions-h1) * regionBytes(st) / time.Since(t1).Seconds()
	s.logf("unthrottled hydration: %.1f MiB/s (measured from status polls, 250ms resolution)", full/(1<<20))
	s.logf("lunferry run:\n%s", run.stop())

	// Finalize under the writer: live swap to linear.
	before := s.writerStats()
	r = s.mustLF("migrate", "finalize", "vol1")
	finTook := r.took
	s.logf("finalize took %.2fs: %s", r.took.Seconds(), strings.TrimSpace(r.stdout))
	swapHeld := s.showVolume("vol1").SwapHeld.D()
	if swapHeld <= 0 || swapHeld > 30*time.Second {
		t.Errorf("finalize recorded that the swap held the host's I/O for %s", swapHeld)
	}
	if table := dmTable(t, plan.DMName("vol1")); !strings.Contains(table, " linear ") {
		t.Fatalf("device table after finalize: %s", table)
	}
	s.logf("after finalize: proxy %s; host's disk %s", cacheFlags(plan.DMName("vol1")), cacheFlags(hostDisk))
	waitFor(t, time.Minute, "the writer to write after finalize", func() bool { return s.writerStats().Writes() > before.Writes()+10 })
	st = s.status("vol1")
	if st.Step != plan.StepFinalized || !slices.Contains(st.Sessions, s.cfg.Host.IQN) {
		t.Fatalf("after finalize: step %s, sessions %v", st.Step, st.Sessions)
	}
	if _, err := os.Stat(filepath.Join(s.state, "metadata", "vol1.meta")); !os.IsNotExist(err) {
		t.Errorf("metadata file still there after finalize: %v", err)
	}
	// Handover: first with a pre-handover hook that leaves the host on
	// the export (refused, the proxy keeps serving), then the runbook's
	// hooks move the host to the new array and the proxy lets go.
	s.handoverRefused(sp)
	hoTook, verified := s.handover(sp)
	total := s.writerStats()
	s.logf("writer: %d sessions, %d files, %d bytes, %d read-backs, %d errors, %d mismatches, longest write+fsync %.0f ms",
		total.Session, total.Files, total.Bytes, total.Readbacks, total.Errors, total.Mismatches, total.MaxWriteMs)
	if total.Errors != 0 || total.Mismatches != 0 || total.Session != 3 {
		t.Fatalf("writer: %+v (want 3 sessions: old LUN, proxy, new LUN directly)", total)
	}
	t.Logf("RESULT full migration: tool window %s, throttled %.2f MiB/s (4 MiB/s asked), unthrottled %.1f MiB/s, finalize %.2fs (swap held host I/O %s), handover %.1fs, writer %d files 0 errors, longest write %.0f ms; new LUN alone: %s",
		window, throttled/(1<<20), full/(1<<20), finTook.Seconds(), swapHeld, hoTook.Seconds(), total.Files, total.MaxWriteMs, verified)
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// TestAbortAfterCutover is lab test 3: after cutover and some hydration
// with the host writing through the proxy, abort leaves the old LUN
// byte-identical to what it was when the host was quiesced at cutover, says
// that the host's writes since cutover exist only on the new LUN, and
// removes everything lunferry built; the post-abort hook puts the host back
// on the old LUN with its pre-cutover files intact.
func TestAbortAfterCutover(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 48 << 20, 64 << 20
	s := newScene(t, oldSize, newSize)
	s.hostOnOld(32, 4<<20)

	sp := s.spec("vol3", "old", "new")
	sp.Old.SizeBytes = oldSize
	sp.Throttle = mustSchedule(t, "2MiB/s")
	sp.Hooks = plan.Hooks{
		PreCutover:  []string{s.hook("pre-cutover"), s.hook("record-old-sum")},
		PostCutover: []string{s.hook("post-cutover")},
		PostAbort:   []string{s.hook("record-old-sum"), s.hook("post-abort")},
		Timeout:     plan.Duration(2 * time.Minute),
	}
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", "vol3")
	s.cutover("vol3")
	run := s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", "vol3")
	waitFor(t, 2*time.Minute, "some hydration and host writes through the proxy", func() bool {
		st := s.status("vol3")
		ws, _ := lab.LoadStats(s.cfg.StatsFile(2))
		return st.Progress.HydratedRegions > 0 && ws.Writes() >= 10
	})
	st := s.status("vol3")
	s.logf("before abort: %d of %d regions hydrated", st.Progress.HydratedRegions, st.Progress.TotalRegions)
	run.stop()

	// The admin's runbook quiesces the host before abort removes the
	// export under it.
	proxyWrites := s.stopWriter()
	s.labCmd("host", "unmount")

	r := s.mustLF("migrate", "abort", "vol3")
	s.logf("abort: %s", strings.TrimSpace(r.stdout))
	if !strings.Contains(r.stdout, "ONLY on the new LUN") {
		t.Errorf("abort does not say that the host's writes since cutover exist only on the new LUN:\n%s", r)
	}
	pre, err := os.ReadFile(filepath.Join(s.dir, "old-pre-cutover.sum"))
	if err != nil {
		t.Fatalf("pre-cutover checksum of the old LUN not recorded: %v", err)
	}
	post, err := os.ReadFile(filepath.Join(s.dir, "old-post-abort.sum"))
	if err != nil {
		t.Fatalf("post-abort checksum of the old LUN not recorded: %v", err)
	}
	if string(pre) != string(post) {
		t.Fatalf("old LUN changed between cutover and abort:\n before: %s after:  %s", pre, post)
	}
	s.logf("old LUN byte-identical: %s", strings.TrimSpace(string(post)))
	if out, err := lab.ExecOut("dmsetup", "info", plan.DMName("vol3")); err == nil {
		t.Errorf("dm device still there after abort:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(lab.DefaultConfigFS, "iscsi", s.cfg.ExportIQN)); err == nil {
		t.Errorf("export %s still in configfs after abort", s.cfg.ExportIQN)
	}
	if _, err := os.Stat(filepath.Join(s.state, "metadata", "vol3.meta")); !os.IsNotExist(err) {
		t.Errorf("metadata file still there after abort: %v", err)
	}
	if st := s.status("vol3"); st.Step != plan.StepAborted {
		t.Errorf("after abort: step %s", st.Step)
	}

	// The post-abort hook put the host back on the old LUN: the files up
	// to cutover are there, those written through the proxy are not.
	back := s.stopWriter()
	if back.Errors != 0 || back.Mismatches != 0 || proxyWrites.Errors != 0 {
		t.Fatalf("writer errors: through the proxy %+v, back on the old LUN %+v", proxyWrites, back)
	}
	if back.Forgotten != proxyWrites.Files {
		t.Errorf("back on the old LUN, %d files of the manifest were missing; want exactly the %d written through the proxy", back.Forgotten, proxyWrites.Files)
	}
	out := s.labCmd("verify", "-max-session", "1")
	s.logf("host back on the old LUN: %s", lastLine(out))
	entries, err := lab.ReadManifest(s.cfg.Manifest())
	if err != nil {
		t.Fatal(err)
	}
	proxyOnly := 0
	for _, e := range entries {
		if e.Session == 2 {
			if _, err := os.Stat(filepath.Join(s.cfg.Host.Mount, e.Path)); err == nil {
				t.Errorf("%s, written through the proxy after cutover, is on the old LUN", e.Path)
			}
			proxyOnly++
		}
	}
	if proxyOnly == 0 {
		t.Fatal("the writer wrote nothing through the proxy")
	}
	s.labCmd("host", "unmount")
}
