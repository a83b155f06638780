package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// The crash matrix (issue "Nothing lost, nothing stranded"). Every step of
// a migration is interrupted at every kernel call it makes: the process is
// killed (the kernel objects stay: a new lunferry runs over the same state
// directory and kernel) or the power goes (kernel objects go, files stay),
// just before the call or just after it; or the call fails and the process
// handles the error. Each interruption is then recovered from (kill:
// rerun, restore then rerun, abort; power: restore then rerun, rerun
// without restore, restore then abort; failure: rerun, abort), the
// migration is taken on to its end where it can be, and the outcome is
// checked (see matrixCase.check): the state matches the kernel, what
// served the host serves it again, the old LUN was never written, the
// volume is where the recovery takes it, hooks did not run twice.

// Hooks of the matrix's volume, beyond spec's and handoverSpec's.
const (
	preAbort     = "/hooks/host-off-proxy"
	postAbort    = "/hooks/back"
	preFinalize  = "/hooks/pre-finalize"
	postFinalize = "/hooks/post-finalize"
	preRollback  = "/hooks/map-old-again"
)

var (
	oldKey    = plantest.Key(oldPortal, oldIQN, 1)
	newKey    = plantest.Key(newPortal, newIQN, 3)
	oldTarget = oldPortal + "," + oldIQN
	newTarget = newPortal + "," + newIQN
)

// matrixSpec is vol1 with a hook in every phase (the online cutover's
// run only when it is online).
func matrixSpec() plan.Spec {
	s := handoverSpec()
	s.Hooks.PreAbort = []string{preAbort}
	s.Hooks.PreFinalize = []string{preFinalize}
	s.Hooks.PostFinalize = []string{postFinalize}
	s.Hooks.PreRollback = []string{preRollback}
	o := onlineSpec()
	s.Hooks.AddPaths, s.Hooks.CheckPaths = o.Hooks.AddPaths, o.Hooks.CheckPaths
	s.Hooks.RemoveDirectPaths, s.Hooks.RestoreDirectPaths = o.Hooks.RemoveDirectPaths, o.Hooks.RestoreDirectPaths
	return s
}

// matrixStep is one command of the matrix, run from its fixture.
type matrixStep struct {
	name string
	// from names the fixture the step starts from.
	from string
	// run is the command; rerun is what the admin runs again after an
	// interruption (nil: run).
	run, rerun func(e *env) error
	// done is the step the command leaves the volume in.
	done plan.Step
	// aborts: the step is an abort (an abort recovery is its rerun);
	// restores: its rerun restores first (run's loop, restore itself);
	// online: the volume cuts over online (the host's writes pass
	// through the proxy to the old LUN); rollsBack: the volume is (being)
	// rolled back (rollback copies the host's writes to the old LUN,
	// then the host's writes go there).
	aborts, restores, online, rollsBack bool
	// check looks further at a volume the command completed; hooks are
	// the hooks the command runs.
	check func(v *plan.Volume, inv plantest.Inventory) error
	hooks []string
}

func (s *matrixStep) again(e *env) error {
	if s.rerun != nil {
		return s.rerun(e)
	}
	return s.run(e)
}

func matrixSteps() []*matrixStep {
	ctx := context.Background()
	abort := func(e *env) error { _, err := e.p.Abort(ctx, "vol1"); return err }
	restore := func(e *env) error { _, err := e.p.Restore(ctx); return err }
	cancel := func(e *env) error { _, err := e.p.CancelAbort(ctx, "vol1"); return err }
	rollback := func(e *env) error {
		if e.k.Device(plan.EraName("vol1")) != nil {
			e.k.HostWrite(plan.EraName("vol1"), 4<<20, 4<<10) // the host wrote since cutover
		}
		_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
		return err
	}
	online := func(e *env) error {
		_, err := e.p.CutoverWith(ctx, "vol1", plan.CutoverOptions{Online: true})
		return err
	}
	return []*matrixStep{
		{name: "prepare", from: "new", done: plan.StepPrepared,
			run: func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err }},
		{name: "cutover", from: "prepared", done: plan.StepCutOver, hooks: []string{"/hooks/quiesce", "/hooks/login"},
			run: func(e *env) error { _, err := e.p.Cutover(ctx, "vol1"); return err }},
		{name: "start", from: "cut-over", done: plan.StepHydrating, check: hydrationOn(true, false),
			run: func(e *env) error { _, err := e.p.Start(ctx, "vol1"); return err }},
		{name: "tick", from: "hydrating", done: plan.StepHydrated, restores: true, run: ticks,
			rerun: func(e *env) error { return errors.Join(restore(e), ticks(e)) }},
		{name: "pause", from: "hydrating", done: plan.StepHydrating, check: hydrationOn(false, true),
			run: func(e *env) error { return e.p.Pause(ctx, "vol1") }},
		{name: "resume", from: "paused", done: plan.StepHydrating, check: hydrationOn(true, false),
			run: func(e *env) error { return e.p.Resume(ctx, "vol1") }},
		{name: "finalize", from: "hydrated", done: plan.StepFinalized, hooks: []string{preFinalize, postFinalize},
			run: func(e *env) error { _, err := e.p.Finalize(ctx, "vol1"); return err }},
		{name: "handover", from: "finalized", done: plan.StepHandedOver, hooks: []string{preHandover, postHandover},
			run: func(e *env) error { _, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{}); return err }},
		{name: "abort from cut-over", from: "cut-over", done: plan.StepAborted, aborts: true, run: abort},
		{name: "abort from hydrating", from: "hydrating", done: plan.StepAborted, aborts: true, run: abort},
		{name: "abort --cancel", from: "abort-pending", done: plan.StepHydrating, check: hydrationOn(true, false), run: cancel},
		{name: "restored abort --cancel", from: "restored-abort-pending", done: plan.StepHydrating,
			check: hydrationOn(true, false), run: cancel},
		{name: "restore hydrating", from: "rebooted-hydrating", done: plan.StepHydrating, restores: true,
			check: hydrationOn(true, false), run: restore},
		{name: "restore finalized", from: "rebooted-finalized", done: plan.StepFinalized, restores: true, run: restore},
		{name: "restore pending abort", from: "rebooted-abort-pending", done: plan.StepAborting, restores: true,
			check: pendingAbort, run: restore},
		{name: "rollback", from: "hydrating", done: plan.StepRolledBack, rollsBack: true, run: rollback},
		{name: "rollback from finalized", from: "finalized", done: plan.StepRolledBack, rollsBack: true, run: rollback,
			hooks: []string{preRollback}},
		{name: "abort from rolled-back", from: "rolled-back", done: plan.StepAborted, aborts: true, rollsBack: true, run: abort},
		{name: "online cutover", from: "prepared", done: plan.StepCutOver, online: true, run: online,
			hooks: []string{addPaths, checkPaths, removeDirect}},
		{name: "back-out from paths-added", from: "online-paths-added", done: plan.StepAborted, aborts: true, online: true, run: abort},
		{name: "back-out from direct-removed", from: "online-direct-removed", done: plan.StepAborted, aborts: true, online: true, run: abort},
		{name: "restore online direct-removed", from: "rebooted-online-direct-removed", done: plan.StepCuttingOver, restores: true,
			online: true, run: restore},
	}
}

// ticks runs the control loop's rounds until vol1 is hydrated; a round's
// error for the volume is the command's.
func ticks(e *env) error {
	ctx := context.Background()
	for range 50 {
		res, err := e.p.Tick(ctx, false)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Error != "" {
				return errors.New(r.Error)
			}
		}
		v, err := e.p.Show(ctx, "vol1")
		if err != nil {
			return err
		}
		if v.Step != plan.StepHydrating {
			return nil
		}
	}
	return errors.New("not hydrated after 50 rounds")
}

// hydrationOn checks the pause flag and whether the clone hydrates.
func hydrationOn(on, paused bool) func(v *plan.Volume, inv plantest.Inventory) error {
	return func(v *plan.Volume, inv plantest.Inventory) error {
		d, ok := inv.Devices[plan.DMName("vol1")]
		switch {
		case v.Paused != paused:
			return fmt.Errorf("paused is %v, want %v", v.Paused, paused)
		case !ok || d.Enabled != on:
			return fmt.Errorf("hydration enabled is %v (device there: %v), want %v", d.Enabled, ok, on)
		}
		return nil
	}
}

// pendingAbort checks an abort restore left pending: nothing removed (the
// step's serving check sees the export), hydration off.
func pendingAbort(v *plan.Volume, inv plantest.Inventory) error {
	if v.AbortTeardown || v.AbortFrom != plan.StepHydrating {
		return fmt.Errorf("abort teardown %v from %s, want a pending abort from hydrating", v.AbortTeardown, v.AbortFrom)
	}
	return hydrationOn(false, false)(v, inv)
}

// interruption is how a step is stopped at one of its kernel calls.
type interruption int

const (
	// kill: the process dies; the kernel objects stay, and a new lunferry
	// runs over the same state directory and kernel.
	kill interruption = iota
	// powerLoss: the machine stops; kernel objects go, files stay.
	powerLoss
	// failure: the call fails without effect; the process handles it.
	failure
)

func (i interruption) String() string { return [...]string{"kill", "power loss", "failure"}[i] }

// recovery is what follows an interruption.
type recovery struct {
	name string
	// after is the interruption it follows.
	after interruption
	// restore first; abort instead of rerunning the step.
	restore, abort bool
}

var recoveries = []recovery{
	{name: "rerun", after: kill},
	{name: "restore, rerun", after: kill, restore: true},
	{name: "abort", after: kill, abort: true},
	{name: "restore, rerun", after: powerLoss, restore: true},
	{name: "rerun without restore", after: powerLoss},
	{name: "restore, abort", after: powerLoss, restore: true, abort: true},
	{name: "rerun", after: failure},
	{name: "abort", after: failure, abort: true},
}

// matrixCase is one cell of the matrix.
type matrixCase struct {
	step *matrixStep
	// n is the kernel call the crash comes at (1-based), call that call
	// in the uninterrupted run.
	n    int
	call string
	// how the step is interrupted, and when: before the call, after it
	// (it was made, the process did not see its result) or, for the
	// swap to linear, inside it.
	how  interruption
	when moment
	rec  recovery
}

// moment is when, around its call, an interruption comes.
type moment int

const (
	before moment = iota
	after
	// inside: between the swap's suspend and its resume (the linear
	// table loaded, the device suspended).
	inside
)

func (m moment) String() string { return [...]string{"before", "after", "inside"}[m] }

func (c matrixCase) String() string {
	when := c.when.String()
	if c.how == failure {
		when = "at"
	}
	return fmt.Sprintf("%s: %s %s call %d (%s), then %s", c.step.name, c.how, when, c.n, c.call, c.rec.name)
}

// applies leaves out recoveries that repeat another for this step.
func (c matrixCase) applies() bool {
	switch {
	case c.rec.after != c.how || (c.how == failure && c.when != before):
		return false
	case c.when == inside && !strings.HasPrefix(c.call, "Swap "):
		return false // only the swap is interrupted inside
	case c.rec.abort && c.step.aborts:
		return false // the step's rerun is an abort
	case c.step.restores && !c.rec.abort && c.how != failure && c.rec.restore == (c.how == kill):
		// The step's rerun restores: after a kill, "restore, rerun" is
		// "rerun"; after a power loss, "rerun without restore" is not.
		return false
	}
	return true
}

// crashRun is what is known of the interrupted run.
type crashRun struct {
	// served: the export existed when the process died.
	served bool
	// hooks is how many hook runs the fake held before the step.
	hooks int
}

// runCase runs one cell and returns its outcome, or the invariants its
// outcome breaks.
func runCase(t *testing.T, f *fixture, c matrixCase) (string, []string) {
	h := &matrixHooks{}
	e := f.env(t, h)
	e.k.ResetCalls()
	run := crashRun{hooks: len(e.k.Hooks)}
	if c.how == failure {
		_, run.served = e.k.Export(exportIQN)
		e.k.FailAt = c.n
		_ = c.step.run(e) // the error is the step's to record
		e.k.FailAt = 0
	} else if !interrupt(t, e, c, &run) {
		return "", []string{"the crash point was not reached"}
	}
	e.p = matrixPlanner(e, h)
	outcome, want, err := recoverCase(e, c)
	if err != nil {
		return outcome, []string{"(4) recovery failed: " + err.Error()}
	}
	if bad := c.check(e, h, want, run); len(bad) > 0 || !c.finishes(want) {
		return outcome, bad
	}
	// The migration goes on to its end from where the recovery left it.
	if err := finishMigration(e); err != nil {
		return outcome, []string{"(4) the migration does not finish after the recovery: " + err.Error()}
	}
	return outcome, c.check(e, h, plan.StepFinalized, run)
}

// interrupt kills the process, or cuts the power, at c's call; it
// reports whether the crash point was reached.
func interrupt(t *testing.T, e *env, c matrixCase, run *crashRun) bool {
	var files map[string][]byte
	e.k.OnCrash = func(inv plantest.Inventory) {
		files = readVolumes(t, e.dir)
		_, run.served = inv.Exports[exportIQN]
	}
	e.k.CrashAt, e.k.CrashAfter, e.k.SwapStopsSuspended = c.n, c.when != before, c.when == inside
	_ = c.step.run(e) // the dead process's last words
	e.k.SwapStopsSuspended = false
	if !e.k.Crashed() || files == nil {
		return false
	}
	// What the dead process saved after its death never happened.
	e.k.CrashAt, e.k.OnCrash = 0, nil
	writeVolumes(t, e.dir, files)
	if c.how == powerLoss {
		e.k.Reboot()
	}
	return true
}

// finishes says whether the case goes on to finalize once recovered to
// step: after the two usual recoveries (a rerun after a kill, a restore
// and rerun after a power loss), from the steps before finalize.
func (c matrixCase) finishes(step plan.Step) bool {
	usual := (c.how == kill && !c.rec.restore && !c.rec.abort) || (c.how == powerLoss && c.rec.restore && !c.rec.abort)
	return usual && (step == plan.StepPrepared || step == plan.StepCutOver || step == plan.StepHydrating || step == plan.StepHydrated)
}

// finishMigration runs the commands that take vol1 from where it is to
// finalized.
func finishMigration(e *env) error {
	ctx := context.Background()
	for range 5 {
		v, err := e.p.Show(ctx, "vol1")
		if err != nil {
			return err
		}
		switch {
		case v.Step == plan.StepFinalized:
			return nil
		case v.Step == plan.StepPrepared:
			_, err = e.p.Cutover(ctx, "vol1")
		case v.Step == plan.StepCutOver:
			_, err = e.p.Start(ctx, "vol1")
		case v.Step == plan.StepHydrating && v.Paused:
			err = e.p.Resume(ctx, "vol1")
		case v.Step == plan.StepHydrating:
			err = ticks(e)
		case v.Step == plan.StepHydrated:
			_, err = e.p.Finalize(ctx, "vol1")
		default:
			return fmt.Errorf("no command moves %s on", v.Step)
		}
		if err != nil {
			return err
		}
	}
	return errors.New("not finalized after 5 commands")
}

// recoverCase runs c's recovery and returns its outcome and the step it
// must leave the volume in.
func recoverCase(e *env, c matrixCase) (string, plan.Step, error) {
	ctx := context.Background()
	st := c.step
	if c.rec.restore {
		if _, err := e.p.Restore(ctx); err != nil {
			return "", "", fmt.Errorf("restore: %w", err)
		}
	}
	if c.rec.abort {
		return abortCase(e, st)
	}
	mark := len(e.k.Calls())
	err := st.again(e)
	switch {
	case err == nil:
		return "done", st.done, nil
	case c.how != powerLoss || c.rec.restore || !toldToRestore(err):
		return "", "", err
	}
	// Rerun without restore after a power loss: refused, it must have
	// acted on nothing; the restore it asks for then lets it finish.
	if acted := mutations(e.k.Calls()[mark:]); len(acted) > 0 {
		return "", "", fmt.Errorf("refused (%v) after acting over stale objects: %v", err, acted)
	}
	if _, err := e.p.Restore(ctx); err != nil {
		return "", "", fmt.Errorf("restore after the refusal: %w", err)
	}
	return "refused: restore first", st.done, st.again(e)
}

// abortCase aborts; after finalize's swap (nothing to roll back to) and
// once a rollback began copying to the old LUN (which alone is then
// neither as of cutover nor current) the abort is refused and the step's
// rerun finishes instead.
func abortCase(e *env, st *matrixStep) (string, plan.Step, error) {
	ctx := context.Background()
	rep, err := e.p.Abort(ctx, "vol1")
	if errors.Is(err, plan.ErrWrongStep) {
		// An abort first settles a swap it finds done or loaded in the
		// kernel: what it refused on is in the state after it.
		after, serr := e.p.Show(ctx, "vol1")
		if serr != nil {
			return "", "", serr
		}
		if after.Step == plan.StepRollingBack && after.Rollback != nil && after.Rollback.Round > 0 {
			return "refused: rollback under way", st.done, st.again(e)
		}
		if after.Linear || after.Step.Finalized() {
			return "refused: past the swap", st.done, st.again(e)
		}
		return "", "", err
	}
	// The abort settles first what an interrupted swap left (an online
	// takeover found done is recorded): the report answers the state
	// after it.
	v, serr := e.p.Show(ctx, "vol1")
	if serr != nil {
		return "", "", serr
	}
	switch {
	case err == nil && rep.HostWritesLost != (v.Exported && (v.Rollback == nil || !v.Rollback.Swapped)):
		return "", "", fmt.Errorf("the abort says host writes lost: %v, but the export was created: %v (rolled back: %v)", rep.HostWritesLost, v.Exported, v.Rollback != nil && v.Rollback.Swapped)
	case err == nil:
		return "aborted", plan.StepAborted, nil
	}
	return "", "", err
}

// toldToRestore: the error says the kernel lost what the state records
// and to run restore.
func toldToRestore(err error) bool {
	return errors.Is(err, plan.ErrDrift) || strings.Contains(err.Error(), "lunferry restore")
}

// mutations are the calls that change the kernel (or run a hook).
func mutations(calls []string) []string {
	var out []string
	for _, c := range calls {
		op, _, _ := strings.Cut(c, " ")
		switch op {
		case "Login", "Logout", "SetReadOnly", "CreateClone", "CreateLinear", "Swap", "Remove", "Message", "SetReadWrite", "Fence", "Unfence",
			"Apply", "Teardown", "CreateFile", "DetachFile", "ZeroDevice", "AttachFile", "Resume", "Hook", "Suspend", "Load", "CopyBack",
			"EraCheckpoint":
			out = append(out, c)
		}
	}
	return out
}

// TestCrashMatrix interrupts every step at every kernel call, recovers
// each way and checks the invariants; it logs the matrix's size and
// outcomes.
func TestCrashMatrix(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("the crash matrix runs over the fake kernel: the lab VM proves nothing more with it")
	}
	onTmpfs(t)
	start := time.Now()
	steps := matrixSteps()
	fx := fixtures(t, steps)
	outcomes := map[string]int{}
	size, bad := 0, 0
	for _, st := range steps {
		calls := uninterrupted(t, fx[st.from], st)
		cells := cellsOf(st, calls)
		for _, c := range cells {
			outcome, problems := runCase(t, fx[st.from], c)
			if len(problems) > 0 {
				bad++
				t.Errorf("%s: %s", c, strings.Join(problems, "; "))
				continue
			}
			outcomes[outcome]++
		}
		size += len(cells)
		t.Logf("%-24s %3d kernel calls, %4d cases", st.name, len(calls), len(cells))
	}
	t.Logf("crash matrix: %d steps, %d cases in %s: %s; %d inconsistent",
		len(steps), size, time.Since(start).Round(time.Millisecond), outcomeList(outcomes), bad)
}

// TestCrashMatrixDefects replays the cells of the matrix that failed
// before their fix (they also run in the lab VM, which skips the matrix).
func TestCrashMatrixDefects(t *testing.T) {
	onTmpfs(t)
	for _, d := range []struct {
		step, call string
		how        interruption
		when       moment
		rec        string
	}{
		// Start, pause and cancel saved their change, then failed on the
		// device a reboot had taken, without saying to restore.
		{"start", "CloneStatus", powerLoss, before, "rerun without restore"},
		{"pause", "Message", powerLoss, before, "rerun without restore"},
		{"abort --cancel", "CloneStatus", powerLoss, before, "rerun without restore"},
		// A resume killed after it cleared the pause flag, or a cancel
		// after it saved the step back, left hydration off, and the rerun
		// did nothing (resume) or was refused (cancel).
		{"resume", "CloneStatus", kill, before, "rerun"},
		{"restored abort --cancel", "CloneStatus", kill, before, "rerun"},
		// The fake forgot the progress of a clone swapped to linear when
		// the power went (dm-clone commits it when the swap suspends it).
		{"finalize", "Swap", powerLoss, after, "restore, rerun"},
		// Finalize dropped the fence it failed to release (a passing
		// login failure taken for an old array that is gone).
		{"finalize", "Login", failure, before, "rerun"},
		// Restore made the old LUN's disk writable under the clone an
		// online takeover had swapped in just before it was killed.
		{"online cutover", "Swap", kill, after, "restore, rerun"},
	} {
		st := stepNamed(t, d.step)
		fx := fixtures(t, []*matrixStep{st})
		calls := uninterrupted(t, fx[st.from], st)
		c := matrixCase{step: st, how: d.how, when: d.when}
		for i, call := range calls {
			if c.n == 0 && strings.HasPrefix(call, d.call+" ") {
				c.n, c.call = i+1, call
			}
		}
		for _, r := range recoveries {
			if r.name == d.rec && r.after == d.how {
				c.rec = r
			}
		}
		require.NotZero(t, c.n, "%s makes no %s call", d.step, d.call)
		require.True(t, c.applies(), "%s", c)
		_, problems := runCase(t, fx[st.from], c)
		require.Empty(t, problems, "%s", c)
	}
}

// onTmpfs puts the test's state directories on tmpfs when there is one:
// the matrix makes thousands of state saves, each fsynced, and tests the
// logic, not the disk.
func onTmpfs(t *testing.T) {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		t.Setenv("TMPDIR", "/dev/shm")
	}
}

func stepNamed(t *testing.T, name string) *matrixStep {
	for _, st := range matrixSteps() {
		if st.name == name {
			return st
		}
	}
	t.Fatalf("no step %s", name)
	return nil
}

// cellsOf lists the cells of one step: each call × each interruption
// before and after it (inside it for the swap) × each recovery that
// applies.
func cellsOf(st *matrixStep, calls []string) []matrixCase {
	var out []matrixCase
	for n, call := range calls {
		for _, when := range []moment{before, after, inside} {
			for _, how := range []interruption{kill, powerLoss, failure} {
				for _, rec := range recoveries {
					c := matrixCase{step: st, n: n + 1, call: call, how: how, when: when, rec: rec}
					if c.applies() {
						out = append(out, c)
					}
				}
			}
		}
	}
	return out
}

// uninterrupted runs the step once without a crash, checks it, and
// returns its kernel calls.
func uninterrupted(t *testing.T, f *fixture, st *matrixStep) []string {
	h := &matrixHooks{}
	e := f.env(t, h)
	e.k.ResetCalls()
	hooks := len(e.k.Hooks)
	require.NoError(t, st.run(e), st.name)
	calls := e.k.Calls()
	c := matrixCase{step: st, rec: recovery{name: "nothing"}}
	require.Empty(t, c.check(e, h, st.done, crashRun{hooks: hooks}), "%s, uninterrupted", st.name)
	require.NotEmpty(t, calls, st.name)
	return calls
}

func outcomeList(m map[string]int) string {
	var out []string
	for k, n := range m {
		out = append(out, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
