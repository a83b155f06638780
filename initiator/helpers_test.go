package initiator

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// transcript is a recorded iscsiadm call from testdata/iscsiadm.
type transcript struct {
	cmd            string
	exit           int
	stdout, stderr []byte
}

func loadTranscript(t testing.TB, name string) transcript {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "iscsiadm", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	head, rest, ok := bytes.Cut(b, []byte("\n--- stdout\n"))
	if !ok {
		t.Fatalf("transcript %s: no stdout section", name)
	}
	out, serr, ok := bytes.Cut(rest, []byte("--- stderr\n"))
	if !ok {
		t.Fatalf("transcript %s: no stderr section", name)
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "$ iscsiadm ") || !strings.HasPrefix(lines[1], "exit ") {
		t.Fatalf("transcript %s: bad header %q", name, head)
	}
	code, err := strconv.Atoi(strings.TrimPrefix(lines[1], "exit "))
	if err != nil {
		t.Fatalf("transcript %s: %v", name, err)
	}
	return transcript{cmd: lines[0], exit: code, stdout: out, stderr: serr}
}

// step is one expected iscsiadm call and the transcript answering it.
type step struct {
	args   string // space-joined expected arguments
	reply  string // transcript name
	effect func() // run when the call is made (e.g. create a record file)
}

// fakeRunner replays transcripts for an exact, ordered list of calls and
// fails the test on any other call. It also checks that no argument or
// stdin ever carries a secret.
type fakeRunner struct {
	t       *testing.T
	secrets []string

	mu    sync.Mutex
	steps []step
	calls []string
}

func newFake(t *testing.T, secrets []string, steps ...step) *fakeRunner {
	f := &fakeRunner{t: t, secrets: secrets, steps: steps}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.steps) > 0 {
			t.Errorf("expected iscsiadm calls not made: first %q", f.steps[0].args)
		}
	})
	return f
}

func (f *fakeRunner) Run(_ context.Context, name string, args []string, stdin []byte) ([]byte, []byte, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := strings.Join(args, " ")
	f.calls = append(f.calls, got)
	if name != "iscsiadm" {
		f.t.Errorf("ran %q, want iscsiadm", name)
	}
	for _, s := range f.secrets {
		if strings.Contains(got, s) || bytes.Contains(stdin, []byte(s)) {
			f.t.Errorf("secret %q passed to iscsiadm: %s", s, got)
		}
	}
	if len(f.steps) == 0 {
		f.t.Errorf("unexpected iscsiadm call: %s", got)
		return nil, []byte("iscsiadm: unexpected call\n"), int(ExitGeneric), nil
	}
	st := f.steps[0]
	f.steps = f.steps[1:]
	if got != st.args {
		f.t.Errorf("iscsiadm call:\n got %s\nwant %s", got, st.args)
	}
	if st.effect != nil {
		st.effect()
	}
	tr := loadTranscript(f.t, st.reply)
	return tr.stdout, tr.stderr, tr.exit, nil
}

// testClient returns a client over the fake runner, a fresh node database
// and the given sysfs tree ("" for none).
func testClient(t *testing.T, f *fakeRunner, sysTree string) (*Client, *FileRecords) {
	t.Helper()
	dir := t.TempDir()
	rec := &FileRecords{NodeDBDir: filepath.Join(dir, "iscsi", "nodes"), LockDir: filepath.Join(dir, "lock")}
	sys := filepath.Join(dir, "nosys")
	if sysTree != "" {
		sys = filepath.Join("testdata", "sysfs", sysTree)
	}
	if err := os.Mkdir(filepath.Join(dir, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Runner: f, SysRoot: sys, DevRoot: filepath.Join(dir, "dev"), Records: rec, PollInterval: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

// makeNodeRecord is the effect of "iscsiadm -m node -o new": it writes the
// captured record file where open-iscsi would.
func makeNodeRecord(t *testing.T, rec *FileRecords, n Node, iface string) func() {
	return func() {
		dir := filepath.Join(rec.NodeDBDir, n.TargetIQN, fmt.Sprintf("%s,%d,%d", n.Portal.addr(), n.Portal.port(), n.TPGT))
		if err := os.MkdirAll(dir, 0o770); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile("testdata/node-record.txt")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, iface), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// removeNodeRecord is the effect of "iscsiadm -m node -o delete".
func removeNodeRecord(t *testing.T, rec *FileRecords, n Node, iface string) func() {
	return func() {
		p, err := rec.NodeRecordPath(n, iface)
		if err != nil {
			t.Errorf("delete of a record that does not exist: %v", err)
			return
		}
		if err := os.Remove(p); err != nil {
			t.Error(err)
		}
	}
}
