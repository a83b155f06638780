package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// onlinePhases are the online cutover's phases as `migrate status --json`
// shows them (field onlinePhase), in order.
var onlinePhases = []string{"passthrough", "paths-added", "direct-removed", "fenced", "taken-over"}

// onlineState is what the online tests read of `migrate status --json`
// for one volume (by field name: the tests do not depend on plan's Go
// types for the online fields).
type onlineState struct {
	Step         string        `json:"step"`
	OnlinePhase  string        `json:"onlinePhase"`
	TakeoverHeld plan.Duration `json:"takeoverHeld"`
	SwapHeld     plan.Duration `json:"swapHeld"`
	Fenced       bool          `json:"fenced"`
	Serving      string        `json:"serving"`
}

func (s *scene) onlineStatus(name string) onlineState {
	s.t.Helper()
	r := s.mustLF("--json", "migrate", "status", name)
	var rep struct {
		Volumes []struct {
			Name string `json:"name"`
			onlineState
		} `json:"volumes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		s.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	for _, v := range rep.Volumes {
		if v.Name == name {
			return v.onlineState
		}
	}
	s.t.Fatalf("status --json: no volume %s in\n%s", name, r.stdout)
	return onlineState{}
}

// addOnlineVolume registers sp with the lab's online hooks (addPaths,
// checkPaths, removeDirectPaths, restoreDirectPaths); online writes
// "cutover": "online" into the runbook (else the test gives --online),
// noFence "fence": "none". The runbook is written as JSON by field name.
func (s *scene) addOnlineVolume(sp plan.Spec, online, noFence bool) {
	s.t.Helper()
	sp.Old.SizeBytes = 0
	sp.Hooks.Timeout = plan.Duration(2 * time.Minute)
	b, err := json.Marshal(plan.Runbook{Volumes: []plan.Spec{sp}})
	if err != nil {
		s.t.Fatal(err)
	}
	var rb struct {
		Volumes []map[string]any `json:"volumes"`
	}
	if err := json.Unmarshal(b, &rb); err != nil {
		s.t.Fatal(err)
	}
	v := rb.Volumes[0]
	if online {
		v["cutover"] = "online"
	}
	if noFence {
		v["fence"] = "none"
	}
	hooks, _ := v["hooks"].(map[string]any)
	if hooks == nil {
		hooks = map[string]any{}
	}
	hooks["addPaths"] = []string{s.hook("add-paths")}
	hooks["checkPaths"] = []string{s.hook("check-paths")}
	hooks["removeDirectPaths"] = []string{s.hook("remove-direct-paths")}
	hooks["restoreDirectPaths"] = []string{s.hook("restore-direct-paths")}
	v["hooks"] = hooks
	if b, err = json.MarshalIndent(rb, "", "  "); err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(s.dir, "runbook-online.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.cleanupVolume(sp)
	if r := s.lunferry("volume", "add", "--runbook", path); r.code != 0 {
		s.t.Fatalf("volume add (online runbook):\n%s\n%s", b, r)
	}
}

// phaseWatch polls a volume's online phase while a cutover runs, marking
// in the lab's phase log each phase it sees lunferry complete (for the
// per-phase stalls) and keeping their order.
type phaseWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	seen []string
}

func (s *scene) watchPhases(name string) *phaseWatch {
	w := &phaseWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			r := s.run(ctx, s.lf, "--state-dir", s.state, "--json", "migrate", "status", name)
			cancel()
			var rep struct {
				Volumes []onlineState `json:"volumes"`
			}
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.Volumes) == 0 {
				continue
			}
			ph := rep.Volumes[0].OnlinePhase
			w.mu.Lock()
			if ph != "" && (len(w.seen) == 0 || w.seen[len(w.seen)-1] != ph) {
				w.seen = append(w.seen, ph)
				s.cfg.Mark("lunferry-" + ph) //nolint:errcheck // a lost mark only merges two phases' stalls
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// end stops the watch and returns the phases seen, in order.
func (w *phaseWatch) end() []string {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// onlineCutover runs the online cutover (args: extra flags), watching its
// phases, and checks where it leaves the host: on its multipath map over
// the proxied path alone, the old array admitting only the proxy, the
// device a clone, the old LUN fenced unless noFence.
func (s *scene) onlineCutover(name string, noFence bool, args ...string) onlineState {
	s.t.Helper()
	s.labCmd("mark", "passthrough")
	w := s.watchPhases(name)
	r := s.lunferry(append(append([]string{"migrate", "cutover"}, args...), name)...)
	seen := w.end()
	s.labCmd("mark", "cut-over")
	if r.code != 0 {
		s.t.Fatalf("online cutover: %s", r)
	}
	st := s.onlineStatus(name)
	s.logf("online cutover (%.1fs): phases seen %v; takeover held %s; status %+v\n%s", r.took.Seconds(), seen, st.TakeoverHeld.D(), st, strings.TrimSpace(r.stdout))
	for i, ph := range seen {
		if j := slices.Index(onlinePhases, ph); j < 0 || (i > 0 && j <= slices.Index(onlinePhases, seen[i-1])) {
			s.t.Fatalf("status showed online phases %v: not in the order %v", seen, onlinePhases)
		}
	}
	if st.Step != string(plan.StepCutOver) || st.OnlinePhase != "taken-over" || st.TakeoverHeld.D() <= 0 || st.Fenced == noFence {
		s.t.Fatalf("after the online cutover: %+v, want step cut-over, phase taken-over, a takeover hold, fenced %v", st, !noFence)
	}
	if table := dmTable(s.t, plan.DMName(name)); !strings.Contains(table, " clone ") {
		s.t.Fatalf("device table after the online cutover: %s", table)
	}
	s.hostOnProxyAlone("after the online cutover")
	return st
}

// hostOnProxyAlone fails unless the host's map runs over its proxied path
// alone and the old array admits only the proxy.
func (s *scene) hostOnProxyAlone(when string) {
	s.t.Helper()
	m, err := s.cfg.HostMap()
	if err != nil {
		s.t.Fatal(err)
	}
	proxied := s.cfg.Host.SessionDisk(s.cfg.ExportIQN)
	if !slices.Equal(m.Paths, []string{proxied}) || !slices.Equal(s.cfg.Host.Sessions(), []string{s.cfg.ExportIQN}) {
		s.t.Fatalf("%s: host map %s over %v, sessions %v; want the proxied path %s alone\n%s", when, m.Name, m.Paths, s.cfg.Host.Sessions(), proxied, s.cfg.Multipath().Show())
	}
	if acls, _ := s.cfg.Arrays["old"].ACLList(); !slices.Equal(acls, []string{s.cfg.ProxyIQN}) {
		s.t.Fatalf("%s: old array ACLs %v, want only the proxy", when, acls)
	}
}

// writerNeverErred fails if any writer session saw an error or a
// mismatch, and logs the totals.
func (s *scene) writerNeverErred(when string) lab.WriterStats {
	s.t.Helper()
	st := s.writerStats()
	s.logf("WRITER %s: %d sessions, %d files, %d errors, %d mismatches, longest write %.1f ms", when, st.Session, st.Files, st.Errors, st.Mismatches, st.MaxWriteMs)
	if st.Errors != 0 || st.Mismatches != 0 {
		s.t.Fatalf("writer %s: %+v", when, st)
	}
	return st
}

// EnvOnline selects the guest side's boot of TestOnlineMigration: "online"
// (the migration up to the power cut) or "after".
const EnvOnline = "LUNFERRY_E2E_ONLINE"

// onlinePowerCut is the line the guest prints to have its power cut.
const onlinePowerCut = "E2E-ONLINE-POWER-CUT"

// TestOnlineMigration: a multipath host with ext4 mounted on its map and
// the writer running is migrated online: the online cutover (hooks join
// the proxied path to the map and remove the direct one, lunferry fences
// and takes over live), hydration, finalize, every file checked; the
// power is cut with the host writing, and after the boot `lunferry run`
// restores the proxy, the host's path comes back and writes again, every
// file is checked through the proxy; the handover's dry run warns of the
// new WWID; `lunferry migrate handover` (the multipath host's hooks stop
// the writer, take its map down, log it out of the export and in to the
// new LUN directly, restart the writer) leaves nothing of the proxy; then
// every file is checked on the new LUN alone. The longest write per
// phase, the takeover's and finalize's holds, the handover's duration are
// printed; 0 write errors.
func TestOnlineMigration(t *testing.T) {
	vmtest.RequireLab(t)
	bin := t.TempDir()
	if err := buildBinaries(bin); err != nil {
		t.Fatal(err)
	}
	runBoots(t, bin, rebootDisks(t), "TestOnlineGuest", EnvOnline, 20*time.Minute,
		labBoot{"online", onlinePowerCut}, labBoot{name: "after"})
}

// TestOnlineGuest is the guest side of TestOnlineMigration; it runs only
// when that test boots the lab.
func TestOnlineGuest(t *testing.T) {
	vmtest.Require(t)
	boot := os.Getenv(EnvOnline)
	if boot == "" {
		t.Skip("guest side of TestOnlineMigration: runs only when that test boots the lab (make test-vm pass 2)")
	}
	s, sp := onlineScene(t, boot == "online")
	if boot == "online" {
		onlineBoot1(t, s, sp)
		return
	}
	s.cleanupVolume(sp)
	onlineBoot2(t, s, sp)
}

// onlineScene builds the scene on the state disk (stateDiskScene), its
// arrays brought (back) up, and the volume's spec with the multipath
// host's handover hooks.
func onlineScene(t *testing.T, first bool) (*scene, plan.Spec) {
	s := stateDiskScene(t, first)
	sp := s.spec("online1", "old", "new")
	sp.Hooks.PreHandover = []string{s.hook("pre-handover-multipath")}
	sp.Hooks.PostHandover = []string{s.hook("post-handover")}
	return s, sp
}

// onlineBoot1 plays the online migration up to finalize, then asks for
// the power cut with the host writing through the proxy.
func onlineBoot1(t *testing.T, s *scene, sp plan.Spec) {
	s.hostOnMultipath(32, 4<<20, false) // iblock over a virtio disk: write back, FUA
	s.writerProgress("on the direct path")
	s.addOnlineVolume(sp, true, false)
	s.mustLF("migrate", "prepare", sp.Name)
	s.onlineCutover(sp.Name, false)
	s.writerProgress("through the proxy's clone")

	run := s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", sp.Name)
	waitFor(t, 5*time.Minute, "hydration to complete", func() bool { return s.onlineStatus(sp.Name).Step == string(plan.StepHydrated) })
	s.logf("lunferry run:\n%s", run.stop())
	s.labCmd("mark", "finalize")
	r := s.mustLF("migrate", "finalize", sp.Name)
	s.labCmd("mark", "finalized")
	st := s.onlineStatus(sp.Name)
	s.logf("finalize (%.1fs), swap held %s: %s", r.took.Seconds(), st.SwapHeld.D(), strings.TrimSpace(r.stdout))
	s.writerProgress("through linear over the new LUN")
	s.writerNeverErred("after finalize")
	s.logf("after finalize, through the proxy: %s", strings.TrimSpace(s.labCmd("verify")))
	s.logStalls()
	s.writerProgress("just before the power cut")
	fmt.Println(onlinePowerCut)
	os.Stdout.Sync()
	time.Sleep(10 * time.Minute) // the host kills the VM
	t.Fatal("still running 10 minutes after asking for the power cut")
}

// onlineBoot2 follows the power cut: `lunferry run` restores the proxy,
// the host's path comes back and its writer writes; every file checked
// through the proxy with the writer going; the handover's dry run; then
// `lunferry migrate handover` (the hooks move the host off its map to the
// new LUN directly) and the checks on the new LUN alone.
func onlineBoot2(t *testing.T, s *scene, sp plan.Spec) {
	s.multipathHost()
	s.labCmd("mark", "power-cut-restore")
	run := s.startLF("run", "--interval", "1s")
	waitFor(t, 2*time.Minute, "lunferry run to restore the export", func() bool {
		_, err := os.Stat(filepath.Join(lab.DefaultConfigFS, "iscsi", sp.Export.IQN))
		return err == nil
	})
	t0 := time.Now()
	s.labCmd("mpath", "mount", "proxy")
	s.labCmd("writer", "start")
	s.writerProgress("through the restored proxy")
	s.logf("host served again %.1fs after logging in", time.Since(t0).Seconds())
	if st := s.onlineStatus(sp.Name); st.Step != string(plan.StepFinalized) {
		t.Fatalf("after the power cut and lunferry run: %+v, want finalized", st)
	}
	if table := dmTable(t, plan.DMName(sp.Name)); !strings.Contains(table, " linear ") {
		t.Fatalf("device table after the power cut: %s", table)
	}
	s.logf("lunferry run:\n%s", run.stop())
	s.writerNeverErred("after the power cut")
	s.logf("through the restored proxy: %s", strings.TrimSpace(s.labCmd("verify")))
	s.handoverDryRun(sp)
	took, verified := s.handover(sp)
	if maps, err := lab.Maps("/sys"); err != nil || len(maps) != 0 {
		t.Errorf("after handover the host still has multipath maps %+v (%v)", maps, err)
	}
	s.logStalls()
	s.writerNeverErred("after handover")
	s.logf("HANDOVER of the multipath host: %.1fs; new LUN alone: %s", took.Seconds(), verified)
}

// handoverDryRun prints `lunferry migrate handover --dry-run` (the
// handover's preparation: the hooks it runs, what it tears down, the new
// disk identity the host will see) and checks that it warns of the new
// WWID, naming the one the host's map has now, and changed nothing.
func (s *scene) handoverDryRun(sp plan.Spec) {
	s.t.Helper()
	m, err := s.cfg.HostMap()
	if err != nil {
		s.t.Fatal(err)
	}
	r := s.mustLF("--dry-run", "migrate", "handover", sp.Name)
	out := r.stdout + r.stderr
	s.logf("handover --dry-run (%.1fs), the host on map %s:\n%s", r.took.Seconds(), m.Name, strings.TrimSpace(out))
	for _, want := range []string{
		"run pre-handover hook " + s.hook("pre-handover-multipath"),
		"after handover the host sees the new array's LUN with the new array's SCSI identity",
		"not naa." + strings.TrimPrefix(m.Name, "3") + ": dm-multipath, udev by-id links",
		"see a new disk",
		"[dry-run] configfs: tear down target " + sp.Export.IQN,
		"[dry-run] dm remove " + plan.DMName(sp.Name),
	} {
		if !strings.Contains(out, want) {
			s.t.Errorf("handover --dry-run does not say %q", want)
		}
	}
	// Device, target, storage object, session to the new LUN.
	if left := s.proxyObjects(sp); len(left) != finalizedObjects {
		s.t.Fatalf("after the handover's dry run, want the proxy's %d objects, have:\n%s", finalizedObjects, strings.Join(left, "\n"))
	}
	s.hostOnProxyAlone("after the handover's dry run")
}

// TestOnlineAbort: the online cutover killed once the old LUN is fenced
// (the host on the proxied path alone), then `migrate abort`: the host is
// back on its direct path, the fence released, the export gone; the
// writer never erred and the old LUN holds every write (checked through
// the direct path, then on the old array's backing store).
func TestOnlineAbort(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 32 << 20, 48 << 20
	s := newScene(t, oldSize, newSize)
	s.hostOnMultipath(16, 2<<20, true)
	s.writerProgress("on the direct path")
	sp := s.spec("onab", "old", "new")
	s.addOnlineVolume(sp, false, false)
	s.mustLF("migrate", "prepare", sp.Name)

	s.labCmd("mark", "passthrough")
	r := s.lunferryCrash("online:fenced", "", "migrate", "cutover", "--online", sp.Name)
	st := s.onlineStatus(sp.Name)
	s.logf("cutover killed at online:fenced (exit %d, %.1fs): %+v", r.code, r.took.Seconds(), st)
	if !r.killed || st.OnlinePhase != "fenced" || !st.Fenced {
		t.Fatalf("cutover killed after the fence: %+v, want phase fenced and the fence held\n%s", st, r)
	}
	s.hostOnProxyAlone("fenced")
	s.writerProgress("through the pass-through, fenced")

	s.labCmd("mark", "abort")
	ab := s.mustLF("migrate", "abort", sp.Name)
	s.labCmd("mark", "aborted")
	st = s.onlineStatus(sp.Name)
	s.logf("abort (%.1fs): %+v\n%s", ab.took.Seconds(), st, strings.TrimSpace(ab.stdout))
	if st.Step != string(plan.StepAborted) || st.Fenced {
		t.Fatalf("after abort: %+v, want aborted and no fence", st)
	}
	m, err := s.cfg.HostMap()
	direct := s.cfg.Host.SessionDisk(s.cfg.Arrays["old"].IQN)
	if err != nil || !slices.Equal(m.Paths, []string{direct}) || !slices.Equal(s.cfg.Host.Sessions(), []string{s.cfg.Arrays["old"].IQN}) {
		t.Fatalf("after abort: host map %+v (%v), sessions %v; want the direct path %s alone", m, err, s.cfg.Host.Sessions(), direct)
	}
	if _, err := os.Stat(filepath.Join(lab.DefaultConfigFS, "iscsi", s.cfg.ExportIQN)); err == nil {
		t.Fatalf("after abort: the export %s is still there", s.cfg.ExportIQN)
	}
	s.writerProgress("on the direct path again")
	s.labCmd("mark", "stopped")
	s.stopWriter()
	s.logStalls()
	s.writerNeverErred("after abort")
	s.logf("through the direct path: %s", strings.TrimSpace(s.labCmd("verify")))
	s.hostLetGo()
	s.logf("old LUN's backing store alone: %s", s.labCmd("verify", "-dev", s.cfg.Arrays["old"].Backing))
}

// TestOnlineWriteThroughRefused: an old LUN that reports a write-through
// cache (the lab's fileio array without a write cache) is refused by the
// online cutover before any hook runs or the export exists: with it, the
// host's map would take write back and FUA from the proxied path and send
// FUA writes down the direct one, which the array refuses (the lab saw
// ext4 abort its journal). The host stays on its direct path, unharmed.
func TestOnlineWriteThroughRefused(t *testing.T) {
	vmtest.Require(t)
	s := newScene(t, 8<<20, 12<<20)
	s.hostOnMultipath(8, 1<<20, false)
	sp := s.spec("onwt", "old", "new")
	s.addOnlineVolume(sp, true, false)
	s.mustLF("migrate", "prepare", sp.Name)
	r := s.lunferry("migrate", "cutover", sp.Name)
	expect(t, r, exitRefused, "write-through")
	s.logf("online cutover of a write-through old LUN: exit %d: %s", r.code, lastLine(r.stderr))
	if _, err := os.Stat(filepath.Join(lab.DefaultConfigFS, "iscsi", s.cfg.ExportIQN)); err == nil {
		t.Fatalf("the refused online cutover left the export %s", s.cfg.ExportIQN)
	}
	if hs := s.cfg.Host.Sessions(); !slices.Equal(hs, []string{s.cfg.Arrays["old"].IQN}) {
		t.Fatalf("host sessions after the refusal: %v, want the old array alone", hs)
	}
	s.writerProgress("on the direct path after the refusal")
	s.stopWriter()
	s.writerNeverErred("after the refusal")
}
