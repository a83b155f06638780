package plan_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/internal/crashpoint"
)

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// killWhen starts cmd, waits until reached (given its output so far)
// says the process got where the test wants it, SIGKILLs it there (no
// deferred call or signal handler of it runs) and reaps it. It fails the
// test if the process ends first or does not get there within timeout,
// and returns the output.
func killWhen(t *testing.T, cmd *exec.Cmd, what string, timeout time.Duration, reached func(out string) bool) string {
	t.Helper()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.After(timeout)
	for !reached(out.String()) {
		select {
		case <-done:
			t.Fatalf("%s: the process ended (%s) before it got there:\n%s", what, cmd.ProcessState, out)
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s: not reached in %s:\n%s", what, timeout, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	<-done
	return out.String()
}

// fileExists is a killWhen condition: path was made.
func fileExists(path string) func(string) bool {
	return func(string) bool { _, err := os.Stat(path); return err == nil }
}

// helperProcess is this test binary running only the helper test name,
// with env added to the environment.
func helperProcess(name string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$")
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// envBin names the directory of the lab's binaries (`make e2e-bin`),
// lunferry-crash among them: lunferry built with -tags crashpoints.
const envBin = "LUNFERRY_E2E_BIN"

// crashLunferry is the crashpoints build of lunferry running args over
// the lab's state directory, told to wait at crash point point (the test
// kills it there, or cuts the power).
func (l *lab) crashLunferry(point string, args ...string) *exec.Cmd {
	dir := os.Getenv(envBin)
	bin := filepath.Join(dir, "lunferry-crash")
	if _, err := os.Stat(bin); dir == "" || err != nil {
		l.t.Fatalf("no crashpoints build of lunferry: run `make e2e-bin` and set %s=$PWD/bin/e2e (%s=%q)", envBin, envBin, dir)
	}
	cmd := exec.Command(bin, append([]string{"--state-dir", filepath.Join(l.dir, "state"), "--lock-wait", "10s"}, args...)...)
	cmd.Env = append(os.Environ(), crashpoint.EnvAt+"="+point, crashpoint.EnvWait+"=1")
	return cmd
}
