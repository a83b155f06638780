package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lunferry/lunferry/plan"
)

// ExecHooks runs hooks as child processes in their own process group, so
// that a hook killed at its timeout takes its children with it.
type ExecHooks struct{}

// Check implements plan.HookRunner: path must be an executable regular
// file.
func (ExecHooks) Check(path string) error { return checkExecutable(path) }

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("not an executable file (chmod +x it)")
	}
	return nil
}

// Run implements plan.HookRunner.
func (ExecHooks) Run(ctx context.Context, path string, env []string, timeout time.Duration, logPath string) error {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return fmt.Errorf("%w: create log directory: %v", plan.ErrHook, err)
	}
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: open log: %v", plan.ErrHook, err)
	}
	defer log.Close()
	fmt.Fprintf(log, "=== %s %s\n", time.Now().UTC().Format(time.RFC3339), path)
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: cannot start: %v", plan.ErrHook, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	kill := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	select {
	case err := <-done:
		return exited(log, err)
	case <-timer.C:
		kill()
		fmt.Fprintf(log, "=== killed after %s\n", timeout)
		return fmt.Errorf("%w: still running after %s, killed", plan.ErrHook, timeout)
	case <-ctx.Done():
		kill()
		return fmt.Errorf("%w: interrupted: %v", plan.ErrHook, ctx.Err())
	}
}

// exited logs how a hook ended and returns its error.
func exited(log *os.File, err error) error {
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			fmt.Fprintf(log, "=== exit status %d\n", ee.ExitCode())
			return fmt.Errorf("%w: exit status %d", plan.ErrHook, ee.ExitCode())
		}
		return fmt.Errorf("%w: %v", plan.ErrHook, err)
	}
	fmt.Fprintf(log, "=== ok\n")
	return nil
}
