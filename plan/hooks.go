package plan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Hook environment. Every hook runs with the proxy's environment plus:
//
//	LUNFERRY_VOLUME          volume name
//	LUNFERRY_PHASE           pre-cutover, post-cutover, pre-finalize,
//	                         post-finalize, pre-abort (only when the
//	                         export exists), post-abort, pre-handover or
//	                         post-handover
//	LUNFERRY_STATE_DIR       the state directory
//	LUNFERRY_DEVICE          the proxy's dm device node (when it exists;
//	                         not at post-handover)
//	LUNFERRY_SIZE_BYTES      the volume's size (when known)
//	LUNFERRY_HOST_IQN        the application host's initiator name
//	LUNFERRY_EXPORT_IQN      the proxy's target name for the host
//	LUNFERRY_EXPORT_PORTAL   the first export portal (ip:port)
//	LUNFERRY_EXPORT_PORTALS  all export portals, space separated
//	LUNFERRY_OLD_PORTAL, LUNFERRY_OLD_IQN, LUNFERRY_OLD_LUN   the old LUN
//	LUNFERRY_NEW_PORTAL, LUNFERRY_NEW_IQN, LUNFERRY_NEW_LUN   the new LUN
//
// A hook must exit 0 within the volume's hook timeout (default 5 minutes);
// otherwise its process group is killed and the step stops with an error
// naming the hook; rerunning the step runs the failed hook again (hooks
// already completed in the step are not rerun, except the pre-handover
// hooks after handover found the host still logged in to the export: they
// did not move it, so they run again). Output goes to
// <state-dir>/logs/<volume>.<phase>.log.
func hookEnv(v *Volume, phase, stateDir string) []string {
	s := &v.Spec
	env := []string{
		"LUNFERRY_VOLUME=" + s.Name,
		"LUNFERRY_PHASE=" + phase,
		"LUNFERRY_STATE_DIR=" + stateDir,
		"LUNFERRY_HOST_IQN=" + s.HostIQN,
		"LUNFERRY_EXPORT_IQN=" + s.Export.IQN,
		"LUNFERRY_EXPORT_PORTALS=" + strings.Join(s.Export.Portals, " "),
		"LUNFERRY_OLD_PORTAL=" + s.Old.Portal,
		"LUNFERRY_OLD_IQN=" + s.Old.IQN,
		"LUNFERRY_OLD_LUN=" + strconv.Itoa(s.Old.LUN),
		"LUNFERRY_NEW_PORTAL=" + s.New.Portal,
		"LUNFERRY_NEW_IQN=" + s.New.IQN,
		"LUNFERRY_NEW_LUN=" + strconv.Itoa(s.New.LUN),
	}
	if len(s.Export.Portals) > 0 {
		env = append(env, "LUNFERRY_EXPORT_PORTAL="+s.Export.Portals[0])
	}
	if o := v.object(ObjDevice); o != nil && o.Device != "" {
		env = append(env, "LUNFERRY_DEVICE="+o.Device)
	}
	if v.SizeSectors != 0 {
		env = append(env, "LUNFERRY_SIZE_BYTES="+strconv.FormatUint(v.SizeSectors*512, 10))
	}
	return env
}

// runHooks runs a phase's hooks in order, skipping those already done in
// this step, and returns the time spent.
func (p *Planner) runHooks(ctx context.Context, v *Volume, phase string, paths []string) (time.Duration, error) {
	timeout := v.Spec.Hooks.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	var spent time.Duration
	for i, path := range paths {
		id := fmt.Sprintf("%s#%d", phase, i)
		if v.hookDone(id) {
			continue
		}
		logPath := filepath.Join(p.store.LogDir(), v.Spec.Name+"."+phase+".log")
		p.logf("volume %s: run %s hook %s (timeout %s)", v.Spec.Name, phase, path, timeout)
		if p.o.DryRun {
			continue
		}
		start := time.Now()
		err := p.o.Ports.Hooks.Run(ctx, path, hookEnv(v, phase, p.o.StateDir), timeout, logPath)
		spent += time.Since(start)
		if err != nil {
			return spent, fmt.Errorf("plan: volume %s: %s hook %s: %w (output in %s): fix it and rerun the step, or abort",
				v.Spec.Name, phase, path, err, logPath)
		}
		v.HooksDone = append(v.HooksDone, id)
		if err := p.save(v); err != nil {
			return spent, err
		}
	}
	return spent, nil
}

// ExecHooks runs hooks as child processes in their own process group.
type ExecHooks struct{}

// Check implements HookRunner: path must be an executable regular file.
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

// Run implements HookRunner.
func (ExecHooks) Run(ctx context.Context, path string, env []string, timeout time.Duration, logPath string) error {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return fmt.Errorf("%w: create log directory: %v", ErrHook, err)
	}
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: open log: %v", ErrHook, err)
	}
	defer log.Close()
	fmt.Fprintf(log, "=== %s %s\n", time.Now().UTC().Format(time.RFC3339), path)
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: cannot start: %v", ErrHook, err)
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
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				fmt.Fprintf(log, "=== exit status %d\n", ee.ExitCode())
				return fmt.Errorf("%w: exit status %d", ErrHook, ee.ExitCode())
			}
			return fmt.Errorf("%w: %v", ErrHook, err)
		}
		fmt.Fprintf(log, "=== ok\n")
		return nil
	case <-timer.C:
		kill()
		fmt.Fprintf(log, "=== killed after %s\n", timeout)
		return fmt.Errorf("%w: still running after %s, killed", ErrHook, timeout)
	case <-ctx.Done():
		kill()
		return fmt.Errorf("%w: interrupted: %v", ErrHook, ctx.Err())
	}
}
