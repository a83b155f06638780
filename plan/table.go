package plan

import (
	"fmt"
	"slices"
	"strings"
)

// command is one row of the step table: which steps a command may start
// from, where it is already done, what it tells the admin otherwise, and
// the "-ing"/"-ed" steps it moves the volume through. In hints and
// messages, {volume} stands for the volume's name and {export} for its
// export IQN.
type command struct {
	// name is the command as the admin types it after `lunferry migrate`.
	name string
	// from are the steps the command runs from (its own "-ing" step
	// included: a rerun resumes it).
	from []Step
	// already are the steps at which the command has nothing left to do;
	// alreadyMsg is logged then ("" logs nothing).
	already    []Step
	alreadyMsg string
	// notReady are steps the command will accept later: refused with
	// ErrNotReady and this message.
	notReady map[Step]string
	// hints explain a refusal by step; hint is the refusal's default.
	hints map[Step]string
	hint  string
	// trying and done are the steps saved before the command touches the
	// kernel and after it succeeded ("" for commands that set no step
	// pair).
	trying, done Step
	// inhibit holds off shutdown while the command runs (host-facing
	// steps).
	inhibit bool
	// onFail is added to the error of a failed transition: what to do.
	onFail string
	// allVolumes loads every volume with this one (cross-volume checks,
	// shared sessions); a corrupt state file of another volume then stops
	// the command too.
	allVolumes bool
}

// The commands. Start, pause, resume and throttle change no kernel object
// graph; remove forgets a volume.
var (
	cmdPrepare = &command{
		name: "prepare", from: []Step{StepNew, StepPreparing},
		already: []Step{StepPrepared}, alreadyMsg: "volume {volume} already prepared",
		hint:   "it is past prepare; see `lunferry migrate status`",
		trying: StepPreparing, done: StepPrepared, allVolumes: true,
	}
	cmdCutover = &command{
		name: "cutover", from: []Step{StepPrepared, StepCuttingOver},
		already: []Step{StepCutOver, StepHydrating, StepHydrated}, alreadyMsg: "volume {volume} already cut over",
		hints:  map[Step]string{StepNew: "run `lunferry migrate prepare {volume}` first"},
		trying: StepCuttingOver, done: StepCutOver, inhibit: true, allVolumes: true,
	}
	cmdStart = &command{
		name: "start", from: []Step{StepCutOver, StepHydrating, StepHydrated},
		hints: map[Step]string{StepRollingBack: rollbackUnderWay, StepRolledBack: rolledBackOld},
		hint:  "hydration starts after cutover",
	}
	cmdResume = &command{name: "resume", from: allSteps}
	cmdPause  = &command{
		name: "pause", from: []Step{StepCutOver, StepHydrating},
		hint: "only hydration can be paused",
	}
	cmdThrottle = &command{
		name: "throttle", from: []Step{StepNew, StepPreparing, StepPrepared, StepCuttingOver, StepCutOver,
			StepHydrating, StepHydrated, StepFinalizing, StepAborting, StepFaulty},
		hint: "the migration is over",
	}
	cmdFinalize = &command{
		name: "finalize", from: []Step{StepHydrating, StepHydrated, StepFinalizing},
		already: []Step{StepFinalized, StepHandingOver, StepHandedOver}, alreadyMsg: "volume {volume} already finalized",
		notReady: map[Step]string{StepCutOver: "hydration has not started: run `lunferry migrate start {volume}`"},
		hints:    map[Step]string{StepRollingBack: rollbackUnderWay, StepRolledBack: rolledBackOld},
		hint:     "finalize follows hydration",
		trying:   StepFinalizing, done: StepFinalized, inhibit: true, allVolumes: true,
	}
	cmdHandover = &command{
		name: "handover", from: []Step{StepFinalized, StepHandingOver},
		already: []Step{StepHandedOver}, alreadyMsg: "volume {volume} already handed over",
		hints: map[Step]string{
			StepFinalizing: "finalize was interrupted: rerun `lunferry migrate finalize {volume}` first",
			StepCutOver:    hostNeedsData, StepHydrating: hostNeedsData, StepHydrated: hostNeedsData,
			StepRollingBack: rollbackUnderWay, StepRolledBack: rolledBackOld,
		},
		hint:   "handover follows finalize",
		trying: StepHandingOver, done: StepHandedOver, inhibit: true, allVolumes: true,
	}
	cmdAbort = &command{
		name: "abort", from: []Step{StepNew, StepPreparing, StepPrepared, StepCuttingOver, StepCutOver,
			StepHydrating, StepHydrated, StepFinalizing, StepRollingBack, StepRolledBack, StepAborting, StepFaulty},
		already: []Step{StepAborted},
		hints: map[Step]string{
			StepHandingOver: "the old LUN is no longer in use and the host is being moved to the new array; there is nothing to roll back to: rerun `lunferry migrate handover {volume}` to finish",
			StepHandedOver:  "the host uses the new array directly and the proxy holds nothing of the volume; there is nothing to roll back to",
			StepFinalized:   abortAfterSwap,
			// Once a rollback's first round began: the old LUN alone is
			// then neither as of cutover nor current.
			StepRollingBack: "a rollback is under way and has begun copying the host's writes to the old LUN, which alone is now neither as it was at cutover nor current: rerun `lunferry migrate rollback {volume}` to finish it (abort then loses nothing)",
		},
		trying: StepAborting, done: StepAborted, allVolumes: true,
		onFail: "fix the cause and rerun `lunferry migrate abort {volume}`",
	}
	cmdRollback = &command{
		name: "rollback", from: []Step{StepCutOver, StepHydrating, StepHydrated, StepFinalized, StepRollingBack},
		already: []Step{StepRolledBack}, alreadyMsg: "volume {volume} already rolled back: the old LUN serves the host through the proxy; `lunferry migrate abort {volume}` ends the migration on the old array",
		hints: map[Step]string{
			StepNew: rollbackBeforeCutover, StepPreparing: rollbackBeforeCutover, StepPrepared: rollbackBeforeCutover,
			StepCuttingOver: "the cutover has not completed: rerun `lunferry migrate cutover {volume}`; an online cutover before its takeover passes the host's writes through to the old LUN, and `lunferry migrate abort {volume}` backs it out with nothing lost",
			StepFinalizing:  "finalize is under way: rerun `lunferry migrate finalize {volume}` to finish it, then roll back",
			StepHandingOver: rollbackAfterHandover, StepHandedOver: rollbackAfterHandover,
			StepFaulty: "the clone is faulty: the host's view cannot be read reliably; `lunferry migrate abort {volume}` goes back to the old LUN as of cutover (writes since then stay on the new LUN only)",
		},
		hint:   "rollback runs between cutover and handover",
		trying: StepRollingBack, done: StepRolledBack, inhibit: true, allVolumes: true,
		onFail: "fix the cause and rerun `lunferry migrate rollback {volume}` (it resumes where it stopped)",
	}
	cmdCancelAbort = &command{
		name: "abort --cancel", from: []Step{StepAborting},
		hints: map[Step]string{
			StepAborted: "the abort already began removing the proxy's objects: rerun `lunferry migrate abort {volume}` to finish it",
		},
		hint: "there is no interrupted abort to cancel",
	}
	cmdRemove = &command{
		name: "remove", from: []Step{StepNew, StepAborted, StepHandedOver},
		hints: map[Step]string{
			StepFinalized:   "the host still reaches the new LUN through lunferry-{volume} and export {export}: run `lunferry migrate handover {volume}` to move the host to the new array and retire the proxy, or pass --forget to drop the record and leave them in place",
			StepHandingOver: "handover was interrupted: rerun `lunferry migrate handover {volume}` first",
		},
		hint: "it holds kernel objects: run `lunferry migrate abort {volume}` first",
	}
)

const (
	rollbackUnderWay      = "a rollback to the old LUN is under way: rerun `lunferry migrate rollback {volume}` to finish it"
	rolledBackOld         = "the volume was rolled back: the old LUN serves the host through the proxy and holds every write; `lunferry migrate abort {volume}` ends the migration on the old array"
	rollbackBeforeCutover = "the host has not been cut over: it still uses the old LUN, there is nothing to roll back"
	rollbackAfterHandover = "the host uses the new array directly and the proxy holds nothing of the volume; there is nothing to roll back to"
	hostNeedsData         = "the host can only move to the new array once it holds all the data: hydrate, then run `lunferry migrate finalize {volume}`"
	abortAfterSwap        = "the device already runs linear over the new LUN and the old LUN is no longer in use; there is nothing to roll back to"
)

// check says whether c may run on v: done is true when there is nothing
// left to do; err refuses it (a *StepError, or ErrNotReady).
func (c *command) check(v *Volume) (done bool, err error) {
	name := v.Spec.Name
	switch {
	case slices.Contains(c.from, v.Step):
		return false, nil
	case slices.Contains(c.already, v.Step):
		return true, nil
	}
	if msg, ok := c.notReady[v.Step]; ok {
		return false, fmt.Errorf("plan: volume %s: %w: %s", name, ErrNotReady, expand(msg, v))
	}
	return false, c.refuse(v, v.Step)
}

// refuse is the StepError for v at step: the step's hint, else the
// command's.
func (c *command) refuse(v *Volume, step Step) *StepError {
	hint, ok := c.hints[step]
	if !ok {
		hint = c.hint
	}
	return &StepError{Volume: v.Spec.Name, Step: v.Step, Want: c.name, Hint: expand(hint, v)}
}

// expand fills in a hint's {volume} and {export}.
func expand(s string, v *Volume) string {
	return strings.NewReplacer("{volume}", v.Spec.Name, "{export}", v.Spec.Export.IQN).Replace(s)
}

// stepInfo is what a step means to status and restore.
type stepInfo struct {
	// serving is what serves the host's I/O in this step.
	serving string
	// next is the command that moves the volume on ("" when none
	// applies), as "<noun> <verb>" after `lunferry`.
	next string
	// restore is what restore does for a volume found in this step.
	restore restoreAction
	// hint is what restore tells the admin.
	hint string
}

// restoreAction is what restore does for a volume in a step.
type restoreAction int

const (
	// restoreNothing: no kernel object serves the host from the proxy.
	restoreNothing restoreAction = iota
	// restoreRebuild: rebuild every recorded object in creation order.
	restoreRebuild
)

// steps is the step table: what serves the host, the next command and
// what restore does, for each step.
var steps = map[Step]stepInfo{
	StepNew:       {serving: "old array", next: "migrate prepare"},
	StepPreparing: {serving: "old array", next: "migrate prepare", restore: restoreRebuild, hint: "prepare was interrupted: rerun `lunferry migrate prepare {volume}` or `lunferry migrate abort {volume}`"},
	StepPrepared:  {serving: "old array", next: "migrate cutover", restore: restoreRebuild},
	StepCuttingOver: {serving: "-", next: "migrate cutover", restore: restoreRebuild,
		hint: "cutover was interrupted: rerun `lunferry migrate cutover {volume}` to resume or `lunferry migrate abort {volume}` to roll back"},
	StepCutOver:    {serving: "proxy (clone)", next: "migrate start", restore: restoreRebuild},
	StepHydrating:  {serving: "proxy (clone)", restore: restoreRebuild, hint: "hydration continues from the progress kept in the metadata; keep `lunferry run` going"},
	StepHydrated:   {serving: "proxy (clone)", next: "migrate finalize", restore: restoreRebuild},
	StepFinalizing: {serving: "proxy (clone)", next: "migrate finalize", restore: restoreRebuild, hint: "finalize was interrupted: rerun `lunferry migrate finalize {volume}`"},
	StepFinalized:  {serving: "proxy (linear over the new LUN)", next: "migrate handover", restore: restoreRebuild},
	// The host may still be on the proxy: it is rebuilt, as finalized
	// (see Volume.info for a host that has left).
	StepHandingOver: {serving: "-", next: "migrate handover", restore: restoreRebuild,
		hint: "handover was interrupted before the host left the proxy; the proxy serves it again: rerun `lunferry migrate handover {volume}`"},
	StepHandedOver: {serving: "new array", next: "volume remove"},
	// Only `migrate abort` finishes an abort: one interrupted before its
	// teardown is pending (see Volume.info), one interrupted in its
	// teardown left the host off the proxy.
	StepAborting: {serving: "-", next: "migrate abort",
		hint: "the abort was interrupted while removing the proxy's objects (the host had left the proxy): rerun `lunferry migrate abort {volume}` to finish it"},
	StepAborted: {serving: "old array", next: "volume remove"},
	// Rolling back rebuilds what it came from, the clone or (after
	// finalize) linear over the new LUN, and linear over the old LUN once
	// its swap is recorded (see Volume.info); rolled back builds linear
	// over the old LUN.
	StepRollingBack: {serving: "proxy (clone)", next: "migrate rollback", restore: restoreRebuild,
		hint: "a rollback was interrupted; the proxy serves the host as before: rerun `lunferry migrate rollback {volume}` to resume it"},
	StepRolledBack: {serving: "proxy (linear over the old LUN)", next: "migrate abort", restore: restoreRebuild},
	// A faulty clone may still carry the host's I/O: it is rebuilt.
	StepFaulty: {serving: "proxy (clone)", next: "migrate abort", restore: restoreRebuild,
		hint: "volume is faulty: run `lunferry migrate abort {volume}`"},
}

// info is the step table's entry for v's step, adjusted for a handover
// whose host has already left the proxy: the host is on the new array and
// rebuilding the export would only offer it the proxy again.
func (v *Volume) info() stepInfo {
	i, ok := steps[v.Step]
	if !ok {
		i.serving = "-" // a step this lunferry does not know
	}
	if v.Step == StepHandingOver && !v.HostMovedAt.IsZero() {
		i.serving, i.restore = "new array", restoreNothing
		i.hint = "handover was interrupted after the host left the proxy; nothing rebuilt: rerun `lunferry migrate handover {volume}` to finish"
	}
	switch {
	case v.Step == StepRollingBack && v.rolledBack():
		i.serving = steps[StepRolledBack].serving
	case v.Step == StepRollingBack && v.Linear:
		i.serving = steps[StepFinalized].serving
	}
	if v.Step == StepCuttingOver && v.passthrough() {
		v.onlineInfo(&i)
	}
	if v.Step == StepAborting && !v.AbortTeardown {
		// A pending abort: the host may still be on the proxy, so the
		// proxy is rebuilt for it; hydration stays off.
		i.serving, i.restore = steps[v.AbortFrom].serving, restoreRebuild
		i.hint = "an abort is pending (interrupted before it removed anything); the proxy serves the host as before: rerun `lunferry migrate abort {volume}` to finish it or `lunferry migrate abort --cancel {volume}` to go back to " + string(v.AbortFrom)
	}
	i.hint = expand(i.hint, v)
	return i
}
