package plan

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// HookPath is the PATH every hook runs with.
const HookPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// HookLang is the LANG every hook runs with.
const HookLang = "C.UTF-8"

// HookEnviron returns a hook's whole environment: PATH=HookPath,
// LANG=HookLang, the LUNFERRY_* variables of inherited (lunferry's own
// environment: a wrapper can hand its hooks settings that way), then env
// (hookEnv's variables; the last of two equal names wins). Nothing else of
// the proxy's environment reaches a hook: a hook runs as root, and neither
// a stray LD_PRELOAD, IFS or proxy setting nor a secret in lunferry's
// environment should follow it there.
func HookEnviron(inherited, env []string) []string {
	out := []string{"PATH=" + HookPath, "LANG=" + HookLang}
	for _, kv := range inherited {
		if strings.HasPrefix(kv, "LUNFERRY_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// Hook environment. Every hook runs with the minimal environment of
// HookEnviron (PATH, LANG and LUNFERRY_* variables only) and these:
//
//	LUNFERRY_VOLUME          volume name
//	LUNFERRY_PHASE           pre-cutover, post-cutover, pre-finalize,
//	                         post-finalize, pre-abort (only when the
//	                         export exists), post-abort, pre-handover,
//	                         post-handover, pre-rollback (after
//	                         finalize), or for an online cutover
//	                         add-paths, check-paths, remove-direct-paths,
//	                         restore-direct-paths (its back-out)
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
