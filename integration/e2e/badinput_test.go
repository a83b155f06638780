package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// Exit codes documented by `lunferry --help` (cmd/lunferry/exitcodes.go).
const (
	exitUsage    = 2
	exitRefused  = 3
	exitNotReady = 4
	exitHook     = 6
	exitISCSI    = 7
)

// withState returns a copy of the scene bound to a subtest, with its own
// state directory.
func (s *scene) withState(t *testing.T) *scene {
	c := *s
	c.t = t
	c.state = filepath.Join(t.TempDir(), "state")
	return &c
}

// expect checks a refused command: exit code and every phrase in stderr.
func expect(t *testing.T, r result, code int, phrases ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d: %s", code, r)
	}
	for _, p := range phrases {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr lacks %q: %s", p, r)
		}
	}
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
}

// proxySessions lists the targets the proxy's lunferry iface has sessions
// to.
func proxySessions() []string {
	h := lab.Host{Iface: "lunferry"}
	return h.Sessions()
}

// TestBadInputs is lab test 4: every bad input the issue lists, through
// the CLI, each with its exit code and message checked, and nothing lost
// or created behind the admin's back.
func TestBadInputs(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 16 << 20, 32 << 20
	s := newScene(t, oldSize, newSize)
	old := s.cfg.Arrays["old"]
	old.Portals = append(old.Portals, "127.0.0.4:3260") // a second path to the same LUN
	if err := old.Up(); err != nil {
		t.Fatal(err)
	}
	if err := old.SetACLs(s.cfg.ProxyIQN); err != nil {
		t.Fatal(err)
	}
	s.addArray("small", []string{"127.0.0.5:3260"}, 8<<20, s.cfg.ProxyIQN)
	chap := s.addArray("chap", []string{"127.0.0.6:3260"}, newSize, s.cfg.ProxyIQN)
	chap.CHAPUser, chap.CHAPPassword = "labuser", "right-secret-1234"
	if err := chap.Up(); err != nil {
		t.Fatal(err)
	}
	s.save()

	t.Run("new LUN smaller than the old", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("small", "old", "small")
		if r := s.addVolumes(sp); r.code != 0 {
			t.Fatal(r)
		}
		expect(t, s.lunferry("migrate", "prepare", "small"), exitRefused, "smaller", "16777216", "8388608")
	})

	t.Run("same LUN as old and new", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("same", "old", "old")
		expect(t, s.addVolumes(sp), exitUsage, "same LUN")
	})

	t.Run("same LUN through another portal", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("samepath", "old", "old")
		sp.New.Portal = "127.0.0.4:3260"
		if r := s.addVolumes(sp); r.code != 0 {
			t.Fatal(r)
		}
		r := s.lunferry("migrate", "prepare", "samepath")
		if r.code == 0 {
			v := s.showVolume("samepath")
			t.Errorf("prepare accepted the same LUN reached through two portals: old disk %+v, new disk %+v", v.OldDisk, v.NewDisk)
		}
		expect(t, r, exitRefused, "same LUN")
	})

	t.Run("LUN used by another volume", func(t *testing.T) {
		s := s.withState(t)
		if r := s.addVolumes(s.spec("first", "old", "new")); r.code != 0 {
			t.Fatal(r)
		}
		second := s.spec("second", "old", "chap")
		second.Export.IQN += "-2"
		expect(t, s.addVolumes(second), exitRefused, "already the old LUN of volume first")
	})

	t.Run("unreachable portal", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("unreach", "old", "new")
		sp.New.Portal = "127.0.0.9:3260"
		if r := s.addVolumes(sp); r.code != 0 {
			t.Fatal(r)
		}
		r := s.lunferry("migrate", "prepare", "unreach")
		expect(t, r, exitISCSI, "127.0.0.9:3260", "unreachable")
		t.Logf("unreachable portal reported after %.1fs", r.took.Seconds())
	})

	t.Run("CHAP login refused", func(t *testing.T) {
		s := s.withState(t)
		secret := filepath.Join(t.TempDir(), "chap-secret")
		if err := os.WriteFile(secret, []byte("wrong-secret-5678\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		sp := s.spec("chapbad", "old", "chap")
		sp.New.CHAP = &plan.CHAP{Username: "labuser", SecretFile: secret}
		if r := s.addVolumes(sp); r.code != 0 {
			t.Fatal(r)
		}
		r := s.lunferry("migrate", "prepare", "chapbad")
		expect(t, r, exitISCSI, "login refused")
		if strings.Contains(r.stdout+r.stderr, "wrong-secret-5678") {
			t.Errorf("the CHAP secret appears in lunferry's output")
		}
	})

	t.Run("host IQN invalid", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("badhost", "old", "new")
		sp.HostIQN = "iqn.2026-11.host1"
		expect(t, s.addVolumes(sp), exitUsage, "hostIQN", "iqn.2026-11.host1")
	})

	t.Run("pre-cutover hook fails", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("hookfail", "old", "new")
		sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("fail")}}
		if r := s.addVolumes(sp); r.code != 0 {
			t.Fatal(r)
		}
		s.mustLF("migrate", "prepare", "hookfail")
		expect(t, s.lunferry("migrate", "cutover", "hookfail"), exitHook, s.hook("fail"), "exit status 3")
		if out, err := lab.ExecOut("dmsetup", "info", plan.DMName("hookfail")); err == nil {
			t.Errorf("a failed pre-cutover hook still built the device:\n%s", out)
		}
		s.mustLF("migrate", "abort", "hookfail")
	})

	t.Run("pre-cutover hook hangs", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("hookhang", "old", "new")
		sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("hang")}, Timeout: plan.Duration(3 * time.Second)}
		if r := s.addVolumes(sp); r.code != 0 {
			t.Fatal(r)
		}
		s.mustLF("migrate", "prepare", "hookhang")
		r := s.lunferry("migrate", "cutover", "hookhang")
		expect(t, r, exitHook, s.hook("hang"), "still running after 3s")
		if r.took > time.Minute {
			t.Errorf("a hook with a 3s timeout held cutover for %s", r.took)
		}
		s.mustLF("migrate", "abort", "hookhang")
	})

	t.Run("state file corrupt", func(t *testing.T) {
		s := s.withState(t)
		if r := s.addVolumes(s.spec("corrupt", "old", "new")); r.code != 0 {
			t.Fatal(r)
		}
		path := filepath.Join(s.state, "volumes", "corrupt.json")
		garbage := []byte("{\"version\": 1, \"spec\": {\"name\": \"corr")
		if err := os.WriteFile(path, garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		expect(t, s.lunferry("migrate", "prepare", "corrupt"), exitRefused, "state file corrupt", path)
		expect(t, s.lunferry("volume", "list"), exitRefused, "state file corrupt")
		if b, _ := os.ReadFile(path); string(b) != string(garbage) {
			t.Errorf("the corrupt state file was changed: %q", b)
		}
		if ps := proxySessions(); len(ps) != 0 {
			t.Errorf("prepare on a corrupt state logged in anyway: %v", ps)
		}
		os.Remove(path) // nothing to roll back
	})

	t.Run("state file from a newer version", func(t *testing.T) {
		s := s.withState(t)
		if r := s.addVolumes(s.spec("newer", "old", "new")); r.code != 0 {
			t.Fatal(r)
		}
		path := filepath.Join(s.state, "volumes", "newer.json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		m["version"] = 99
		m["fieldFromTheFuture"] = true
		nb, _ := json.Marshal(m)
		if err := os.WriteFile(path, nb, 0o600); err != nil {
			t.Fatal(err)
		}
		expect(t, s.lunferry("migrate", "prepare", "newer"), exitRefused, "newer", "version 99")
		if got, _ := os.ReadFile(path); string(got) != string(nb) {
			t.Errorf("the newer state file was changed")
		}
		if ps := proxySessions(); len(ps) != 0 {
			t.Errorf("prepare on a newer state logged in anyway: %v", ps)
		}
		os.Remove(path)
	})

	t.Run("finalize before hydration completes", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("early", "old", "new")
		sp.Hooks = plan.Hooks{PostCutover: []string{s.hook("host-login")}}
		if r := s.addVolumes(sp); r.code != 0 {
			t.Fatal(r)
		}
		s.mustLF("migrate", "prepare", "early")
		expect(t, s.lunferry("migrate", "finalize", "early"), exitRefused, "finalize")
		s.mustLF("migrate", "cutover", "early")
		expect(t, s.lunferry("migrate", "finalize", "early"), exitNotReady, "hydration has not started")
		// Paused before start: the clone stays at 0%.
		s.mustLF("migrate", "pause", "early")
		s.mustLF("migrate", "start", "early")
		expect(t, s.lunferry("migrate", "finalize", "early"), exitNotReady, "hydration is at 0.0%")
		if table := dmTable(t, plan.DMName("early")); !strings.Contains(table, " clone ") {
			t.Errorf("refused finalize changed the table: %s", table)
		}
		s.labCmd("host", "unmount")
	})

	t.Run("dm device with lunferry's name unknown to the state", func(t *testing.T) {
		s := s.withState(t)
		name := plan.DMName("stray")
		vmtest.Exec(t, "dmsetup", "create", "--noudevsync", name, "--table", "0 2048 zero")
		if r := s.addVolumes(s.spec("stray", "old", "new")); r.code != 0 {
			t.Fatal(r)
		}
		// Registered after the volume's cleanup, so it runs before it.
		t.Cleanup(func() { lab.ExecOut("dmsetup", "remove", "--noudevsync", name) })
		expect(t, s.lunferry("migrate", "prepare", "stray"), exitRefused, name, "neither adopt nor delete")
		if table := dmTable(t, name); table != "0 2048 zero" {
			t.Errorf("the unknown device was changed: %q", table)
		}
		if ps := proxySessions(); len(ps) != 0 {
			t.Errorf("prepare logged in despite the unknown device: %v", ps)
		}
	})

	t.Run("LIO target with the export's name unknown to the state", func(t *testing.T) {
		s := s.withState(t)
		sp := s.spec("straytgt", "old", "new")
		tgt := filepath.Join(lab.DefaultConfigFS, "iscsi", sp.Export.IQN)
		if err := os.MkdirAll(filepath.Join(tgt, "tpgt_1"), 0o755); err != nil {
			t.Fatal(err)
		}
		if r := s.addVolumes(sp); r.code != 0 {
			os.Remove(filepath.Join(tgt, "tpgt_1"))
			os.Remove(tgt)
			t.Fatal(r)
		}
		// Registered after the volume's cleanup, so it runs before it.
		t.Cleanup(func() {
			os.Remove(filepath.Join(tgt, "tpgt_1"))
			os.Remove(tgt)
		})
		expect(t, s.lunferry("migrate", "prepare", "straytgt"), exitRefused, sp.Export.IQN, "neither adopt nor delete")
		if _, err := os.Stat(filepath.Join(tgt, "tpgt_1")); err != nil {
			t.Errorf("the unknown target was touched: %v", err)
		}
	})
}
