//go:build crashpoints

package crashpoint

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary run helperPoints through Hit
// (TestHelperHits), printing "passed NAME" after each.
const helperEnv = "CRASHPOINT_TEST_HELPER"

var helperPoints = []string{"trying:x", "push:a", "created:a", "push:a", "done:y"}

func TestHelperHits(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process of the crashpoints tests")
	}
	for _, p := range helperPoints {
		Hit(p)
		fmt.Printf("passed %s\n", p)
	}
	os.Exit(0)
}

func helper(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHits$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=1"}, env...)...)
	return cmd
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		at, name string
		n        int
		want     bool
	}{
		{"push:a", "push:a", 1, true},
		{"push:a", "push:a", 2, false},
		{"push:a#2", "push:a", 2, true},
		{"push:a#2", "push:a", 1, false},
		{"push:a#x", "push:a", 1, false},
		{"push:a", "push:b", 1, false},
		{"", "push:a", 1, false},
	} {
		if got := matches(c.at, c.name, c.n); got != c.want {
			t.Errorf("matches(%q, %q, %d) = %v", c.at, c.name, c.n, got)
		}
	}
}

// TestKillAtCountedHit: "push:a#2" kills the process with SIGKILL at the
// second hit of push:a, after every earlier point passed; the trace lists
// every point reached, the fatal one included.
func TestKillAtCountedHit(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := helper(t, EnvAt+"=push:a#2", EnvTrace+"="+trace)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper did not die: %v\n%s", err, out)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want SIGKILL\n%s", ws, out)
	}
	if want := "passed trying:x\npassed push:a\npassed created:a\n"; string(out) != want {
		t.Errorf("helper printed %q, want %q", out, want)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if want := "trying:x\npush:a\ncreated:a\npush:a\n"; string(b) != want {
		t.Errorf("trace %q, want %q", b, want)
	}
}

// TestTraceWithoutCrash: with no crash point named, every point passes
// and is traced.
func TestTraceWithoutCrash(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace")
	out, err := helper(t, EnvAt+"=", EnvTrace+"="+trace).Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(b)); strings.Join(got, " ") != strings.Join(helperPoints, " ") {
		t.Errorf("trace %v, want %v", got, helperPoints)
	}
}

// TestWaitBlocksAfterPrinting: with EnvWait, the named point prints
// Reached and its name and blocks; nothing after it runs.
func TestWaitBlocksAfterPrinting(t *testing.T) {
	cmd := helper(t, EnvAt+"=created:a", EnvWait+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != Reached+"created:a" {
			t.Fatalf("helper printed %q, want %q", l, Reached+"created:a")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not reach created:a within 30s")
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("helper no longer running at its crash point: %v", err)
	}
	_ = cmd.Wait()
	if strings.Contains(stdout.String(), "passed created:a") {
		t.Errorf("helper went past its crash point:\n%s", stdout.String())
	}
}
