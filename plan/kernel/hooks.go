package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/lunferry/lunferry/plan"
)

// ExecHooks runs hooks as child processes in their own process group, so
// that a hook killed at its timeout takes its children with it, with the
// minimal environment plan.HookEnviron documents.
type ExecHooks struct {
	// Owner is the uid that must own every hook: 0, root, as lunferry
	// runs as root (tests set their own uid).
	Owner int
}

// Check implements plan.HookRunner: path must be an executable regular
// file, owned by h.Owner and not writable by group or others (a hook runs
// as root in the window: whoever can replace it can run anything there).
func (h ExecHooks) Check(path string) error {
	if err := checkExecutable(path); err != nil {
		return err
	}
	return checkHookOwner(path, h.Owner)
}

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

// checkHookOwner refuses a hook that another user than owner could
// replace: owned by someone else, or group- or world-writable.
func checkHookOwner(path string, owner int) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("mode %04o makes it writable by other users, who could replace what runs as root: run chmod go-w %s", uint32(perm), path)
	}
	if uid, ok := fileOwner(st); !ok || uid != owner {
		return fmt.Errorf("owned by uid %d, not %s: another user could replace what runs as root: run chown %s %s", uid, ownerName(owner), ownerName(owner), path)
	}
	return nil
}

// fileOwner returns the uid owning the file st describes.
func fileOwner(st os.FileInfo) (int, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(sys.Uid), true
}

// ownerName renders uid for chown: "root" for 0.
func ownerName(uid int) string {
	if uid == 0 {
		return "root"
	}
	return strconv.Itoa(uid)
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
	cmd.Env = plan.HookEnviron(os.Environ(), env)
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
