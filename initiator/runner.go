package initiator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Runner runs an external command. The Client runs iscsiadm only through
// its Runner, so tests feed it recorded output and a dry run prints the
// calls instead of making them.
//
// A command that ran and exited non-zero is not an error for Run: it returns
// the exit code with err == nil. err is for commands that could not be run
// (not installed, context cancelled).
type Runner interface {
	Run(ctx context.Context, name string, args []string, stdin []byte) (stdout, stderr []byte, exitCode int, err error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct {
	// Env, if non-nil, replaces the environment of the commands.
	Env []string
}

// Run runs name with args and returns its output and exit code.
func (r ExecRunner) Run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, []byte, int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if r.Env != nil {
		cmd.Env = r.Env
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, serr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &serr
	// iscsiadm forks nothing long-lived, but a stuck child must not keep the
	// pipes open forever after cancellation.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return out.Bytes(), serr.Bytes(), -1, fmt.Errorf("run %s: %w", name, ctxErr)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return out.Bytes(), serr.Bytes(), ee.ExitCode(), nil
	}
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, nil, -1, fmt.Errorf("run %s: %w (install open-iscsi: apt-get install open-iscsi, or dnf install iscsi-initiator-utils)", name, err)
		}
		return out.Bytes(), serr.Bytes(), -1, fmt.Errorf("run %s: %w", name, err)
	}
	return out.Bytes(), serr.Bytes(), 0, nil
}

// PrintRunner is a dry-run Runner: it writes each command line to W, shell
// quoted, prefixed with Prefix, and runs nothing. Every call succeeds with
// empty output, so a Client over a PrintRunner discovers no targets and finds
// no sessions; Login and Logout print the calls they would make.
type PrintRunner struct {
	// W receives one line per command.
	W io.Writer
	// Prefix starts every line, e.g. "would run: ".
	Prefix string

	mu sync.Mutex
}

// Run prints the command and returns success.
func (p *PrintRunner) Run(_ context.Context, name string, args []string, stdin []byte) ([]byte, []byte, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := p.Prefix + ShellQuote(append([]string{name}, args...))
	if stdin != nil {
		line += fmt.Sprintf(" (with %d bytes on stdin)", len(stdin))
	}
	if _, err := fmt.Fprintln(p.W, line); err != nil {
		return nil, nil, -1, fmt.Errorf("dry run: %w", err)
	}
	return nil, nil, 0, nil
}

// ShellQuote renders argv as a POSIX shell command line, quoting only
// the words that need it.
func ShellQuote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=@%+") == "" {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}
