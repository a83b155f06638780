package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/internal/crashpoint"
	"github.com/lunferry/lunferry/plan"
)

// crashName is the crashpoints build of lunferry (internal/crashpoint) in
// the EnvBin directory (`make e2e-bin` builds it).
const crashName = "lunferry-crash"

var (
	crashOnce sync.Once
	crashBin  string
	crashErr  error
)

// buildCrash builds lunferry with -tags crashpoints into dir.
func buildCrash(dir string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-tags", "crashpoints", "-o", filepath.Join(dir, crashName), "./cmd/lunferry")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags crashpoints lunferry: %v\n%s", err, out)
	}
	return nil
}

// crashBinary returns the path of the crashpoints build: EnvBin's, else
// one built once for the test binary.
func crashBinary(t testing.TB) string {
	t.Helper()
	crashOnce.Do(func() {
		if dir := os.Getenv(EnvBin); dir != "" {
			if _, err := os.Stat(filepath.Join(dir, crashName)); err == nil {
				crashBin = filepath.Join(dir, crashName)
				return
			}
		}
		dir, err := os.MkdirTemp("", "lunferry-e2e-crash-")
		if err != nil {
			crashErr = err
			return
		}
		start := time.Now()
		if crashErr = buildCrash(dir); crashErr == nil {
			crashBin = filepath.Join(dir, crashName)
			fmt.Fprintf(os.Stderr, "e2e: built %s in %.1fs\n", crashName, time.Since(start).Seconds())
		}
	})
	if crashErr != nil {
		t.Fatalf("e2e: %v", crashErr)
	}
	return crashBin
}

// crashResult is one run of the crashpoints build.
type crashResult struct {
	result
	// killed: the process died of SIGKILL (its crash point).
	killed bool
}

// lunferryCrash runs the crashpoints build with the scene's state
// directory: it kills itself at point ("" for none) and appends every
// crash point it passes to trace ("" for none).
func (s *scene) lunferryCrash(point, trace string, args ...string) crashResult {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, crashBinary(s.t), append([]string{"--state-dir", s.state}, args...)...)
	cmd.Env = append(s.env(), crashpoint.EnvAt+"="+point, crashpoint.EnvTrace+"="+trace)
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := crashResult{result: result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}}
	if cmd.ProcessState == nil {
		s.t.Fatalf("%s %s: %v", crashName, strings.Join(args, " "), err)
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	r.code = cmd.ProcessState.ExitCode()
	r.killed = ws.Signaled() && ws.Signal() == syscall.SIGKILL
	return r
}

// crashPoints lists the crash points `lunferry migrate <command> <name>`
// passes from the volume's present step, in order: a dry run of the
// crashpoints build goes through the same state machine with printing
// ports and traces them.
func (s *scene) crashPoints(command, name string) []string {
	s.t.Helper()
	trace := filepath.Join(s.dir, "crash-dry-"+command+".trace")
	os.Remove(trace)
	r := s.lunferryCrash("", trace, "--dry-run", "migrate", command, name)
	if r.code != 0 {
		s.t.Fatalf("dry pass of %s: %s", command, r.result)
	}
	points := traced(s.t, trace)
	for i, p := range points {
		if slices.Contains(points[:i], p) {
			s.t.Fatalf("crash point %s passed twice by one %s (%v): the chain would need name#k", p, command, points)
		}
	}
	if len(points) == 0 || !strings.HasPrefix(points[0], "trying:") {
		s.t.Fatalf("dry pass of %s traced %v: want a list starting with its trying point", command, points)
	}
	return points
}

// traced reads a crash point trace.
func traced(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// crashChain kills `lunferry migrate <command>` at each of points in turn.
// Each run is the rerun of the run before: it resumes and dies at the next
// point, so every point is followed by a rerun, and the caller's last run
// finishes the command. After each death the step is trying and the
// invariants hold (checkAfterCrash); between[p], when set, runs after the
// death at p (a restore, a cancelled abort). The old array's backing store
// is checked once the chain is through (a write at any point would show).
// It returns the runs' total time.
func (s *scene) crashChain(sp plan.Spec, command string, trying plan.Step, points []string, between map[string]func()) time.Duration {
	s.t.Helper()
	trace := filepath.Join(s.dir, "crash-"+command+".trace")
	os.Remove(trace)
	var took time.Duration
	for _, p := range points {
		r := s.lunferryCrash(p, trace, "migrate", command, sp.Name)
		took += r.took
		if !r.killed {
			s.t.Fatalf("lunferry migrate %s did not die at crash point %s: %s", command, p, r.result)
		}
		s.logf("%s killed at %s after %.1fs", command, p, r.took.Seconds())
		s.checkAfterCrash(sp, trying, command+" killed at "+p)
		if f := between[p]; f != nil {
			f()
		}
	}
	s.checkOldUnchanged(command + " killed at each crash point")
	for _, p := range traced(s.t, trace) {
		if !slices.Contains(points, p) {
			s.t.Errorf("crash point %s was passed by a real %s but not by its dry pass %v: it is not tested", p, command, points)
		}
	}
	return took
}

// checkAfterCrash checks what must hold whenever lunferry died, and after
// each recovery: the step is want; status finds no drift and no stray;
// every lunferry object in the kernel is in the state's undo stack and
// every object the stack records as made is in the kernel; the host's
// writer saw no error and, if it runs, goes on. (The old array's backing
// store, slow to checksum under emulation, is checked by the callers at
// the end of a chain and after recoveries: checkOldUnchanged.)
func (s *scene) checkAfterCrash(sp plan.Spec, want plan.Step, when string) {
	s.t.Helper()
	rep := s.statusReport(sp.Name)
	st := rep.Volumes[0]
	if st.Step != want {
		s.t.Errorf("%s: step %s, want %s (last error %q)", when, st.Step, want, st.LastError)
	}
	if len(st.Drift) > 0 || len(rep.Strays) > 0 {
		s.t.Errorf("%s: status reports drift %v, strays %v", when, st.Drift, rep.Strays)
	}
	v := s.showVolume(sp.Name)
	for _, m := range objectMismatch(v, s.kernelKinds(sp, v.MetadataFile)) {
		s.t.Errorf("%s: %s", when, m)
	}
	s.checkWriter(when)
}

// statusReport reads `lunferry --json migrate status` of one volume.
func (s *scene) statusReport(name string) plan.StatusReport {
	s.t.Helper()
	r := s.mustLF("--json", "migrate", "status", name)
	var rep plan.StatusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Volumes) != 1 {
		s.t.Fatalf("status --json of %s: %v\n%s", name, err, r.stdout)
	}
	return rep
}

// kernelKinds says which of a volume's objects the kernel holds: its dm
// device, its era device, its export (LIO target or storage object), the proxy's sessions
// to the old and new LUNs' targets, a loop device over its metadata file.
func (s *scene) kernelKinds(sp plan.Spec, metaFile string) map[plan.ObjectKind]bool {
	k := map[plan.ObjectKind]bool{}
	if _, err := lab.ExecOut("dmsetup", "info", plan.DMName(sp.Name)); err == nil {
		k[plan.ObjDevice] = true
	}
	if _, err := lab.ExecOut("dmsetup", "info", plan.EraName(sp.Name)); err == nil {
		k[plan.ObjEra] = true
	}
	sos, _ := filepath.Glob(filepath.Join(lab.DefaultConfigFS, "core", "*", plan.DMName(sp.Name)))
	if _, err := os.Stat(filepath.Join(lab.DefaultConfigFS, "iscsi", sp.Export.IQN)); err == nil || len(sos) > 0 {
		k[plan.ObjExport] = true
	}
	for _, sess := range initiatorSessions() {
		iface, tn, _ := strings.Cut(sess, " ")
		if iface == s.cfg.Host.Iface {
			continue
		}
		k[plan.ObjOldLogin] = k[plan.ObjOldLogin] || tn == sp.Old.IQN
		k[plan.ObjNewLogin] = k[plan.ObjNewLogin] || tn == sp.New.IQN
	}
	loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, l := range loops {
		b, _ := os.ReadFile(l)
		if metaFile != "" && strings.HasPrefix(strings.TrimSpace(string(b)), metaFile) {
			k[plan.ObjMetadata] = true
		}
	}
	return k
}

// objectMismatch compares a volume's undo stack with the kernel: an
// object in the kernel must be recorded (made or pending), and one
// recorded as made must be in the kernel, except, once the device runs
// linear, the old LUN's session and the metadata: nothing needs them, so
// restore does not rebuild them and finalize's rerun removes them.
func objectMismatch(v plan.Volume, kernel map[plan.ObjectKind]bool) []string {
	var out []string
	recorded := map[plan.ObjectKind]plan.Object{}
	for _, o := range v.Objects {
		recorded[o.Kind] = o
	}
	for _, kind := range []plan.ObjectKind{plan.ObjNewLogin, plan.ObjMetadata, plan.ObjOldLogin, plan.ObjDevice, plan.ObjEra, plan.ObjExport} {
		o, ok := recorded[kind]
		switch {
		case kernel[kind] && !ok:
			out = append(out, fmt.Sprintf("the kernel holds the volume's %s but the state does not record it (stranded)", kind))
		case !kernel[kind] && ok && !o.Pending && !(v.Linear && (kind == plan.ObjOldLogin || kind == plan.ObjMetadata)):
			out = append(out, fmt.Sprintf("the state records %s %s as made but the kernel does not hold it", kind, o.Name))
		}
	}
	return out
}

// checkOldUnchanged compares the old array's backing store with its
// checksum recorded by the record-old-sum hook once the host was quiesced
// at cutover. After the post-abort hooks gave the old LUN back to the host
// (which writes to it again), their own record is compared instead.
func (s *scene) checkOldUnchanged(when string) {
	s.t.Helper()
	pre, err := os.ReadFile(filepath.Join(s.dir, "old-pre-cutover.sum"))
	if os.IsNotExist(err) {
		return // not cut over yet
	}
	if err != nil {
		s.t.Fatal(err)
	}
	now, err := os.ReadFile(filepath.Join(s.dir, "old-post-abort.sum"))
	if os.IsNotExist(err) {
		sum, _, serr := lab.SumFile(s.cfg.Arrays["old"].Backing)
		if serr != nil {
			s.t.Fatal(serr)
		}
		now, err = []byte(sum), nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if f := strings.Fields(string(pre)); len(f) == 0 || f[0] != strings.Fields(string(now))[0] {
		s.t.Errorf("%s: the old array's backing store changed since cutover: %s, was %s", when, now, pre)
	}
}

// checkWriter fails on any error or mismatch the host's writer saw; if the
// writer runs, it must still make progress (the host is served): files
// written, or read back once the filesystem is as full as the writer lets
// it be.
func (s *scene) checkWriter(when string) {
	s.t.Helper()
	st := s.writerStats()
	if st.Errors != 0 || st.Mismatches != 0 {
		s.t.Fatalf("%s: the host's writer saw %d errors, %d mismatches: %s", when, st.Errors, st.Mismatches, st.LastError)
	}
	if !s.writerRunning() {
		return
	}
	waitFor(s.t, time.Minute, when+": the host's writer to go on", func() bool {
		now := s.writerStats()
		return now.Writes()+now.Readbacks >= st.Writes()+st.Readbacks+2
	})
}

// writerRunning reports whether the host's last writer session runs.
func (s *scene) writerRunning() bool {
	sessions := s.cfg.Sessions()
	if len(sessions) == 0 {
		return false
	}
	st, err := lab.LoadStats(s.cfg.StatsFile(sessions[len(sessions)-1]))
	return err == nil && st.Stopped.IsZero()
}

// restoreBetween is a recovery sample: `lunferry restore` after a crash,
// before the rerun; it must leave the step and the invariants as they
// were.
func (s *scene) restoreBetween(sp plan.Spec, step plan.Step) func() {
	return func() {
		r := s.mustLF("restore")
		s.logf("restore after the crash (%.1fs): %s", r.took.Seconds(), strings.TrimSpace(r.stdout))
		s.checkAfterCrash(sp, step, "restore after a crash")
	}
}
