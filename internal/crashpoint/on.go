//go:build crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Enabled says whether this build has crash points: built with the
// crashpoints tag.
const Enabled = true

var (
	mu   sync.Mutex
	hits = map[string]int{}
)

// Hit is a crash point: it records the hit (EnvTrace) and, when EnvAt
// names this hit, kills the process with SIGKILL, which no deferred call
// or signal handler sees, or with EnvWait set, prints Reached and blocks.
func Hit(name string) {
	mu.Lock()
	defer mu.Unlock()
	hits[name]++
	trace(name)
	if !matches(os.Getenv(EnvAt), name, hits[name]) {
		return
	}
	if os.Getenv(EnvWait) != "" {
		fmt.Fprintf(os.Stderr, "%s%s\n", Reached, name)
		for {
			time.Sleep(time.Hour)
		}
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	// SIGKILL is delivered before the kill system call returns to a
	// single-threaded caller, but not necessarily to this thread of a Go
	// program: never go past the crash point.
	for {
		time.Sleep(time.Hour)
	}
}

// matches reports whether at ("name" or "name#k", k from 1) names the
// n-th hit of name.
func matches(at, name string, n int) bool {
	want, k, counted := strings.Cut(at, "#")
	if want != name {
		return false
	}
	if !counted {
		return n == 1
	}
	i, err := strconv.Atoi(k)
	return err == nil && i == n
}

// trace appends name to the EnvTrace file, if set; a trace that cannot be
// written is reported on stderr and does not stop the program.
func trace(name string) {
	path := os.Getenv(EnvTrace)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.WriteString(name + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "crashpoint: trace %s: %v\n", name, err)
	}
}
