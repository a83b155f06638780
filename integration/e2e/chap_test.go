package e2e

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// chapCase is one CHAP combination of TestCHAPMigrations.
type chapCase struct {
	name string
	// mutual: the arrays prove themselves to the proxy too.
	mutual bool
	// discovery: LIO wants CHAP on SendTargets discovery (other
	// credentials than the sessions').
	discovery bool
	// export: the host authenticates to the export (exportMutual: and the
	// proxy to the host).
	export, exportMutual bool
}

// TestCHAPMigrations migrates a small LUN (prepare, cutover with the host
// logging in, unthrottled hydration, finalize) between arrays that want
// CHAP, once per combination: session CHAP one-way and mutual without
// discovery CHAP (LIO's default, which refused lunferry's discovery while
// it offered the session's credentials there), and discovery CHAP with
// session CHAP; the export asks the host for CHAP, one-way and mutual. The
// new LUN ends up with the old LUN's bytes, and no secret shows in
// lunferry's output, state or logs.
func TestCHAPMigrations(t *testing.T) {
	vmtest.Require(t)
	for _, c := range []chapCase{
		// No commas in the names: they become the backing files' paths,
		// and LIO's control string is comma separated.
		{name: "session one-way CHAP without discovery CHAP"},
		{name: "session mutual CHAP without discovery CHAP and export mutual CHAP", mutual: true, export: true, exportMutual: true},
		{name: "discovery CHAP and session CHAP and export CHAP", discovery: true, export: true},
	} {
		t.Run(c.name, func(t *testing.T) { chapMigration(t, c) })
	}
}

// chapSecrets makes credentials with fresh secrets, remembering them so
// that the test can look for leaks.
type chapSecrets struct {
	t   *testing.T
	dir string
	all []string
}

// creds returns lab credentials for user (mutual: with the target's) and
// the runbook's CHAP naming their secret files.
func (cs *chapSecrets) creds(user string, mutual bool) (*lab.CHAP, *plan.CHAP) {
	secret := func(role string) (string, string) {
		v := role + "-" + strings.TrimPrefix(vmtest.RandomName("s"), "lunferry-s-")
		p := filepath.Join(cs.dir, user+"-"+role+".secret")
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			cs.t.Fatal(err)
		}
		cs.all = append(cs.all, v)
		return v, p
	}
	v, p := secret("secret")
	l, rb := &lab.CHAP{User: user, Password: v}, &plan.CHAP{Username: user, SecretFile: p}
	if mutual {
		mv, mp := secret("mutual")
		l.MutualUser, l.MutualPassword = user+"-target", mv
		rb.MutualUsername, rb.MutualSecretFile = user+"-target", mp
	}
	return l, rb
}

// chapScene sets up the lab for c: discovery authentication, arrays
// wanting the proxy's CHAP (both LUNs mapped to the proxy already), the
// host's credentials for the export; and the runbook's spec naming the
// secret files.
func chapScene(t *testing.T, c chapCase, cs *chapSecrets, size int64) (*scene, plan.Spec) {
	var discovery *plan.CHAP
	if c.discovery {
		// LIO has one discovery setting for all its targets: both arrays
		// (one LIO in the lab) want the same credentials.
		var d *lab.CHAP
		d, discovery = cs.creds("lab-discovery", false)
		t.Cleanup(func() {
			if err := lab.SetDiscoveryAuth("", nil); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		if err := lab.SetDiscoveryAuth("", d); err != nil {
			t.Fatal(err)
		}
	}
	s := newScene(t, size, size)
	sp := s.spec("chap", "old", "new")
	sp.Old.SizeBytes = plan.Bytes(size)
	sp.Identity = "new" // the lab arrays' raw LUNs have no identity LIO can show again
	for _, l := range []struct {
		role string
		lun  *plan.LUN
	}{{"old", &sp.Old}, {"new", &sp.New}} {
		a := s.cfg.Arrays[l.role]
		lc, rc := cs.creds("proxy-at-"+l.role, c.mutual)
		a.CHAPUser, a.CHAPPassword, a.CHAPMutualUser, a.CHAPMutualPassword = lc.User, lc.Password, lc.MutualUser, lc.MutualPassword
		if err := a.SetACLs(s.cfg.ProxyIQN); err != nil {
			t.Fatal(err)
		}
		if err := a.Up(); err != nil {
			t.Fatal(err)
		}
		l.lun.CHAP, l.lun.DiscoveryCHAP = rc, discovery
	}
	if c.export {
		lc, rc := cs.creds("host", c.exportMutual)
		s.cfg.Host.CHAP = map[string]*lab.CHAP{s.cfg.ExportIQN: lc}
		sp.Export.CHAP = rc
	}
	sp.Hooks = plan.Hooks{PostCutover: []string{s.hook("host-login")}, Timeout: plan.Duration(time.Minute)}
	return s, sp
}

func chapMigration(t *testing.T, c chapCase) {
	const size = 4 << 20
	cs := &chapSecrets{t: t, dir: t.TempDir()}
	s, sp := chapScene(t, c, cs, size)
	s.save()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.cfg.Arrays["old"].Backing, data, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var out bytes.Buffer
	keep := func(r result) { out.WriteString(r.stdout + r.stderr) }
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	dry := s.mustLF("--dry-run", "migrate", "prepare", "chap")
	keep(dry)
	if !strings.Contains(dry.stdout, "CHAP user "+sp.New.CHAP.Username+", secret from "+sp.New.CHAP.SecretFile) {
		t.Errorf("the dry run does not name the new LUN's CHAP user and secret file:\n%s", dry)
	}
	keep(s.mustLF("migrate", "prepare", "chap"))
	s.cutover("chap")
	if st := s.status("chap"); st.Step != plan.StepCutOver || len(st.Sessions) != 1 || st.Sessions[0] != s.cfg.Host.IQN {
		t.Fatalf("after cutover: step %s, export sessions %v", st.Step, st.Sessions)
	}
	keep(s.mustLF("migrate", "start", "--follow", "--interval", "500ms", "chap"))
	keep(s.mustLF("migrate", "finalize", "chap"))
	took := time.Since(start)
	if st := s.status("chap"); st.Step != plan.StepFinalized {
		t.Fatalf("after finalize: step %s", st.Step)
	}
	got, err := os.ReadFile(s.cfg.Arrays["new"].Backing)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < size || !bytes.Equal(got[:size], data) {
		old, _ := os.ReadFile(s.cfg.Arrays["old"].Backing)
		t.Fatalf("the new LUN (%d bytes) does not hold the old LUN's bytes: first difference at %d; old backing still as written: %v",
			len(got), firstDiff(got, data), bytes.Equal(old, data))
	}
	s.noSecretLeaked(cs.all, out.String())
	s.logf("RESULT %s: prepare to finalized in %.1fs", c.name, took.Seconds())
}

// noSecretLeaked fails the test if a secret shows in lunferry's output or
// anywhere under its state directory (state files, hook logs).
func (s *scene) noSecretLeaked(secrets []string, output string) {
	s.t.Helper()
	check := func(where, text string) {
		for _, v := range secrets {
			if strings.Contains(text, v) {
				s.t.Errorf("a CHAP secret shows in %s", where)
			}
		}
	}
	check("lunferry's output", output)
	err := filepath.WalkDir(s.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasSuffix(p, ".meta") || strings.HasSuffix(p, ".era") {
			return err
		}
		b, err := os.ReadFile(p)
		check(p, string(b))
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// firstDiff returns the offset of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
