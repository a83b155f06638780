// Package e2e holds lunferry's end-to-end lab tests: a whole migration of a
// live ext4 volume driven through the built lunferry binary exactly as an
// admin's runbook would, with the arrays and the application host played
// by integration/lab in the same lab VM. Tests that need the kernel start
// with vmtest.Require (they run inside the VM, `make test-vm`); the
// reboot test boots the VM twice itself (vmtest.RequireLab).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

func TestMain(m *testing.M) { os.Exit(vmtest.LeakCheck(m)) }

// EnvBin names a directory holding prebuilt lunferry and lunferry-lab
// binaries (the host-orchestrated tests and the demo build them on the
// host, where building is fast). Without it the tests build them once.
const EnvBin = "LUNFERRY_E2E_BIN"

var (
	binOnce             sync.Once
	binLunferry, binLab string
	binErr              error
)

// repoRoot finds the module root above the working directory.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/lunferry/lunferry\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no lunferry go.mod above %s", wd)
		}
	}
}

// buildBinaries builds lunferry and lunferry-lab into dir.
func buildBinaries(dir string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", dir+"/", "./cmd/lunferry", "./integration/lab/cmd/lunferry-lab")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build lunferry, lunferry-lab: %v\n%s", err, out)
	}
	return nil
}

// binaries returns the paths of lunferry and lunferry-lab.
func binaries(t testing.TB) (string, string) {
	t.Helper()
	binOnce.Do(func() {
		dir := os.Getenv(EnvBin)
		if dir == "" {
			dir, binErr = os.MkdirTemp("", "lunferry-e2e-bin-")
			if binErr != nil {
				return
			}
			start := time.Now()
			if binErr = buildBinaries(dir); binErr != nil {
				return
			}
			fmt.Fprintf(os.Stderr, "e2e: built lunferry and lunferry-lab in %.1fs\n", time.Since(start).Seconds())
		}
		binLunferry, binLab = filepath.Join(dir, "lunferry"), filepath.Join(dir, "lunferry-lab")
		for _, p := range []string{binLunferry, binLab} {
			if _, err := os.Stat(p); err != nil {
				binErr = err
			}
		}
	})
	if binErr != nil {
		t.Fatalf("e2e binaries: %v", binErr)
	}
	return binLunferry, binLab
}

// hooksDir is a copy of integration/lab/hooks, owned by the user running
// the tests (root in the lab VM) with mode 0755: lunferry refuses hooks
// that are not root's or that group or others may write, as a checkout
// made by another user or with umask 002 has them. It lives in dst, the
// lab's directory: a multi-boot scene keeps it on its state disk, where
// the volumes' specs find it again after the power cut.
func hooksDir(t testing.TB, dst string) string {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "integration", "lab", "hooks")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o755)
		}
		if err == nil {
			err = os.Chmod(filepath.Join(dst, e.Name()), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// scene is one lab set-up: arrays, host, lunferry state directory.
type scene struct {
	t       testing.TB
	dir     string
	cfgPath string
	cfg     *lab.Config
	state   string
	lf      string
	labBin  string
	hooks   string
	suffix  string
	start   time.Time
}

// newScene writes a lab config under a fresh directory with the default
// topology (old array of oldSize, new array of newSize, file backed),
// array IQNs made unique with a random suffix, and brings the arrays up.
// Cleanup (LIFO) stops the host, rolls lunferry back, removes the arrays.
func newScene(t testing.TB, oldSize, newSize int64) *scene {
	t.Helper()
	dir := t.TempDir()
	suffix := strings.TrimPrefix(vmtest.RandomName("x"), "lunferry-x-")
	cfg := lab.DefaultConfig(dir, filepath.Join(dir, "old.img"), oldSize, filepath.Join(dir, "new.img"), newSize)
	for _, a := range cfg.Arrays {
		a.IQN += "-" + suffix
	}
	cfg.ExportIQN += "-" + suffix
	return sceneFrom(t, cfg, filepath.Join(dir, "lab.json"), filepath.Join(dir, "state"), suffix)
}

// sceneFrom builds a scene over a given lab config (saved to cfgPath) and
// lunferry state directory, and brings the arrays up.
func sceneFrom(t testing.TB, cfg *lab.Config, cfgPath, state, suffix string) *scene {
	t.Helper()
	lf, labBin := binaries(t)
	s := &scene{t: t, dir: cfg.Dir, cfgPath: cfgPath, cfg: cfg, state: state,
		lf: lf, labBin: labBin, hooks: hooksDir(t, filepath.Join(cfg.Dir, "hooks")), suffix: suffix, start: time.Now()}
	s.save()
	t.Cleanup(func() {
		for _, a := range s.cfg.Arrays {
			if err := a.Down(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	for _, a := range s.cfg.Arrays {
		if err := a.Up(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if _, _, err := s.cfg.StopWriter(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := s.cfg.HostLogoutAll(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpDiagnostics()
		}
	})
	return s
}

// dumpDiagnostics logs what helps to understand a failure: the kernel log
// tail, the hooks' logs and the writer's logs.
func (s *scene) dumpDiagnostics() {
	if out, err := exec.Command("dmesg").CombinedOutput(); err == nil {
		l := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(l) > 80 {
			l = l[len(l)-80:]
		}
		s.t.Logf("--- dmesg (last lines)\n%s", strings.Join(l, "\n"))
	}
	logs, _ := filepath.Glob(filepath.Join(s.state, "logs", "*.log"))
	more, _ := filepath.Glob(filepath.Join(s.dir, "writer-*.log"))
	for _, p := range append(logs, more...) {
		b, _ := os.ReadFile(p)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		s.t.Logf("--- %s\n%s", p, b)
	}
}

func (s *scene) save() {
	s.t.Helper()
	if err := s.cfg.Save(s.cfgPath); err != nil {
		s.t.Fatal(err)
	}
}

// addArray adds and brings up one more array (role name, portals, size).
func (s *scene) addArray(role string, portals []string, size int64, acls ...string) *lab.Array {
	s.t.Helper()
	a := &lab.Array{Name: role, IQN: "iqn.2026-11.io.lunferry.lab:" + role + "-array-" + s.suffix, Portals: portals,
		Backing: filepath.Join(s.dir, role+".img"), SizeBytes: size, ACLs: acls, HBAIndex: lab.RandomHBAIndex()}
	s.cfg.Arrays[role] = a
	s.save()
	s.t.Cleanup(func() {
		if err := a.Down(); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
	})
	if err := a.Up(); err != nil {
		s.t.Fatal(err)
	}
	return a
}

func (s *scene) logf(format string, args ...any) {
	s.t.Helper()
	s.t.Logf("%7.2fs "+format, append([]any{time.Since(s.start).Seconds()}, args...)...)
}

// result is one command's outcome.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %.1fs\n--- stdout\n%s--- stderr\n%s", r.code, r.took.Seconds(), r.stdout, r.stderr)
}

func (s *scene) env() []string {
	return append(os.Environ(), lab.EnvConfig+"="+s.cfgPath, "LUNFERRY_LAB_TOOL="+s.labBin)
}

// run runs a command with the scene's environment.
func (s *scene) run(ctx context.Context, name string, args ...string) result {
	return s.runEnv(ctx, nil, name, args...)
}

// runEnv runs a command with the scene's environment plus extra.
func (s *scene) runEnv(ctx context.Context, extra []string, name string, args ...string) result {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(s.env(), extra...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code = -1
		r.stderr += err.Error()
	}
	return r
}

// lunferry runs the lunferry binary with the scene's state directory.
func (s *scene) lunferry(args ...string) result {
	s.t.Helper()
	return s.lunferryEnv(nil, args...)
}

// lunferryEnv runs the lunferry binary with extra environment variables
// (which its hooks inherit).
func (s *scene) lunferryEnv(extra []string, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return s.runEnv(ctx, extra, s.lf, append([]string{"--state-dir", s.state}, args...)...)
}

// mustLF runs lunferry and fails the test unless it exits 0.
func (s *scene) mustLF(args ...string) result {
	s.t.Helper()
	r := s.lunferry(args...)
	if r.code != 0 {
		s.t.Fatalf("lunferry %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// labCmd runs lunferry-lab with the scene's config and fails on error.
func (s *scene) labCmd(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := s.run(ctx, s.labBin, append([]string{"-config", s.cfgPath}, args...)...)
	if r.code != 0 {
		s.t.Fatalf("lunferry-lab %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// spec returns the volume spec of the lab topology: old -> new, exported
// at the lab export portal to the host.
func (s *scene) spec(name, oldRole, newRole string) plan.Spec {
	o, n := s.cfg.Arrays[oldRole], s.cfg.Arrays[newRole]
	return plan.Spec{
		Name:    name,
		Old:     plan.LUN{Portal: o.Portals[0], IQN: o.IQN},
		New:     plan.LUN{Portal: n.Portals[0], IQN: n.IQN},
		HostIQN: s.cfg.Host.IQN,
		Export:  plan.Export{IQN: s.cfg.ExportIQN, Portals: []string{s.cfg.ExportPortal}},
	}
}

// hook returns the path of a lab hook.
func (s *scene) hook(name string) string { return filepath.Join(s.hooks, name) }

// addVolumes writes a runbook and runs `lunferry volume add --runbook`,
// registering a cleanup that rolls each volume back (abort, and a direct
// teardown of anything left, e.g. after finalize).
func (s *scene) addVolumes(specs ...plan.Spec) result {
	s.t.Helper()
	path := s.writeRunbook(specs...)
	for _, sp := range specs {
		s.cleanupVolume(sp)
	}
	return s.lunferry("volume", "add", "--runbook", path)
}

func (s *scene) writeRunbook(specs ...plan.Spec) string {
	s.t.Helper()
	b, err := json.MarshalIndent(plan.Runbook{Volumes: specs}, "", "  ")
	if err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(s.dir, fmt.Sprintf("runbook-%d.json", time.Now().UnixNano()))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// cleanupVolume rolls a volume back at the end of the test, whatever state
// it was left in: `lunferry migrate abort`, then a direct removal of the
// export, device, sessions and metadata lunferry would have made (all
// idempotent), so a failed test leaks nothing.
func (s *scene) cleanupVolume(sp plan.Spec) {
	s.t.Cleanup(func() {
		// Quiesce the host first: abort removes the export under it.
		if _, _, err := s.cfg.StopWriter(); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
		if err := s.cfg.HostLogoutAll(); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
		r := s.lunferry("migrate", "abort", sp.Name)
		if r.code != 0 && !strings.Contains(r.stderr, "no such volume") && !strings.Contains(r.stderr, "finalized") {
			s.t.Logf("cleanup: abort %s: %s", sp.Name, r)
		}
		s.decommission(sp)
	})
}

// decommission removes what lunferry built for a volume without asking
// lunferry (cleanup after a failure; the tests retire the proxy with
// `lunferry migrate handover`): LIO export, dm device, sessions to both
// arrays, metadata file.
func (s *scene) decommission(sp plan.Spec) {
	s.t.Helper()
	ctx := context.Background()
	sp.Normalize()
	ports := kernel.Ports(kernel.Options{})
	var errs []string
	if err := ports.Exporter.Teardown(ctx, sp.Export.IQN, plan.DMName(sp.Name)); err != nil {
		errs = append(errs, fmt.Sprintf("teardown export: %v", err))
	}
	for _, n := range []string{plan.EraName(sp.Name), plan.DMName(sp.Name)} {
		if err := ports.Mapper.Remove(ctx, n); err != nil {
			errs = append(errs, fmt.Sprintf("remove device %s: %v", n, err))
		}
	}
	for _, l := range []plan.LUN{sp.Old, sp.New} {
		if err := ports.Initiator.Logout(ctx, plan.Target{Portal: l.Portal, IQN: l.IQN}); err != nil {
			errs = append(errs, fmt.Sprintf("logout %s: %v", l.IQN, err))
		}
	}
	for _, ext := range []string{".meta", ".era"} {
		meta := filepath.Join(s.state, "metadata", sp.Name+ext)
		if err := ports.Metadata.DetachFile(ctx, meta, true); err != nil {
			errs = append(errs, fmt.Sprintf("metadata %s: %v", meta, err))
		}
	}
	if len(errs) > 0 {
		s.t.Errorf("decommission %s: %s", sp.Name, strings.Join(errs, "; "))
	}
}

// status reads `lunferry migrate status --json` for one volume.
func (s *scene) status(name string) plan.VolumeStatus {
	s.t.Helper()
	r := s.mustLF("--json", "migrate", "status", name)
	var rep plan.StatusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		s.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	for _, v := range rep.Volumes {
		if v.Name == name {
			return v
		}
	}
	s.t.Fatalf("status --json: no volume %s in\n%s", name, r.stdout)
	return plan.VolumeStatus{}
}

// background runs lunferry with args until the test ends (or stop is
// called); its output is kept for the log.
type background struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (s *scene) startLF(args ...string) *background {
	s.t.Helper()
	bg := &background{out: &syncBuffer{}, done: make(chan struct{})}
	bg.cmd = exec.Command(s.lf, append([]string{"--state-dir", s.state}, args...)...)
	bg.cmd.Env = s.env()
	bg.cmd.Stdout, bg.cmd.Stderr = bg.out, bg.out
	if err := bg.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { bg.cmd.Wait(); close(bg.done) }()
	s.t.Cleanup(func() { bg.stop() })
	return bg
}

// stop interrupts the process and waits for it.
func (bg *background) stop() string {
	select {
	case <-bg.done:
	default:
		bg.cmd.Process.Signal(os.Interrupt)
		select {
		case <-bg.done:
		case <-time.After(20 * time.Second):
			bg.cmd.Process.Kill()
			<-bg.done
		}
	}
	return bg.out.String()
}

// writerStats sums the writer's sessions.
func (s *scene) writerStats() lab.WriterStats {
	s.t.Helper()
	st, err := s.cfg.AllStats()
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// dmTable returns `dmsetup table NAME`.
func dmTable(t testing.TB, name string) string {
	t.Helper()
	return strings.TrimSpace(vmtest.Exec(t, "dmsetup", "table", name))
}

// waitFor polls cond every 250ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// cacheFlags describes a block device's write cache and FUA support as
// the block layer sees them (queue/write_cache, queue/fua): what LIO
// advertises to the host for an iblock export.
func cacheFlags(dev string) string {
	name := filepath.Base(dev)
	if strings.HasPrefix(name, "lunferry-") {
		names, _ := filepath.Glob("/sys/block/dm-*/dm/name")
		for _, p := range names {
			if b, _ := os.ReadFile(p); strings.TrimSpace(string(b)) == name {
				name = filepath.Base(filepath.Dir(filepath.Dir(p)))
			}
		}
	}
	wc, _ := os.ReadFile(filepath.Join("/sys/block", name, "queue", "write_cache"))
	fua, _ := os.ReadFile(filepath.Join("/sys/block", name, "queue", "fua"))
	return fmt.Sprintf("%s: write_cache=%q fua=%s", name, strings.TrimSpace(string(wc)), strings.TrimSpace(string(fua)))
}
