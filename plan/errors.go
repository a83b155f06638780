package plan

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on (the CLI maps them to exit codes). They
// are wrapped with the details; test them with errors.Is.
var (
	// ErrInvalidSpec: the volume's description is wrong; fix the flags or
	// the runbook.
	ErrInvalidSpec = errors.New("invalid volume spec")
	// ErrConflict: the volume clashes with another one (same name, LUN,
	// export IQN).
	ErrConflict = errors.New("conflicts with another volume")
	// ErrNotFound: no volume of that name in the state directory.
	ErrNotFound = errors.New("no such volume")
	// ErrWrongStep: the command does not apply to the volume's current
	// step.
	ErrWrongStep = errors.New("not allowed in this step")
	// ErrNotReady: the step's precondition is not met yet (e.g. finalize
	// before hydration completes); try again later.
	ErrNotReady = errors.New("not ready")
	// ErrSizeMismatch: the new LUN is smaller than the old one, or the old
	// LUN's size changed.
	ErrSizeMismatch = errors.New("LUN size mismatch")
	// ErrSameLUN: old and new are the same device.
	ErrSameLUN = errors.New("old and new are the same LUN")
	// ErrUnknownObject: a kernel object carries lunferry's name but the
	// state does not know it; lunferry neither adopts nor deletes it.
	ErrUnknownObject = errors.New("kernel object not created by this state")
	// ErrStateCorrupt: a state file cannot be read; nothing was changed.
	ErrStateCorrupt = errors.New("state file corrupt")
	// ErrStateVersion: a state file was written by a newer lunferry;
	// nothing was changed.
	ErrStateVersion = errors.New("state file from a newer lunferry")
	// ErrLocked: another lunferry holds the state directory's lock.
	ErrLocked = errors.New("state directory locked by another lunferry")
	// ErrHook: a hook failed, hung or could not be started.
	ErrHook = errors.New("hook failed")
	// ErrUnreachable: a portal could not be reached.
	ErrUnreachable = errors.New("portal unreachable")
	// ErrLoginRefused: the target refused the login (CHAP, ACL).
	ErrLoginRefused = errors.New("login refused")
	// ErrSessionTimeout: the host did not log in to the export in time.
	ErrSessionTimeout = errors.New("host session did not appear")
	// ErrFaulty: the kernel reports the clone failed (metadata in fail or
	// read-only mode).
	ErrFaulty = errors.New("clone device faulty")
)

// StepError says a command is not allowed in the volume's current step and
// what to do instead.
type StepError struct {
	// Volume is the volume's name.
	Volume string
	// Step is the volume's current step.
	Step Step
	// Want is the refused command.
	Want string
	// Hint tells the admin what to do instead.
	Hint string
}

// Error implements error.
func (e *StepError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("plan: volume %s is %s: %s not allowed: %s", e.Volume, e.Step, e.Want, e.Hint)
	}
	return fmt.Sprintf("plan: volume %s is %s: %s not allowed", e.Volume, e.Step, e.Want)
}

// Unwrap makes errors.Is(err, ErrWrongStep) true.
func (e *StepError) Unwrap() error { return ErrWrongStep }
