package plan

import (
	"errors"
	"fmt"
	"strings"
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
	// ErrMetadataLost: the clone's metadata (its hydration record) is
	// missing, short, or not the volume's: a clone rebuilt over it would
	// copy old data over the host's writes.
	ErrMetadataLost = errors.New("clone metadata lost")
	// ErrDrift: the kernel does not hold what the state records (an
	// object gone, another table, a suspended device): nothing is done
	// over it.
	ErrDrift = errors.New("kernel differs from the state")
	// ErrStalled: hydration made no progress for long although it should
	// (the old LUN returns read errors, which dm-clone retries forever, or
	// an array is unreachable).
	ErrStalled = errors.New("hydration stalled")
	// ErrIdentity: the export cannot show the host the old LUN's identity
	// (and the runbook does not accept a new one).
	ErrIdentity = errors.New("old LUN identity cannot be carried")
	// ErrReservations: the old LUN holds SCSI-3 persistent reservations,
	// which would not follow the host to the proxy.
	ErrReservations = errors.New("old LUN holds persistent reservations")
	// ErrFenceRefused: the old array does not take the persistent
	// reservation that fences the old LUN.
	ErrFenceRefused = errors.New("old array refuses persistent reservations")
	// ErrWriteThrough: the old LUN reports a write-through cache, which
	// the online cutover cannot show the host through both paths.
	ErrWriteThrough = errors.New("old LUN reports a write-through cache")
	// ErrNotZeroed: a region discarded on the clone does not read as
	// zeroes from the new LUN, though it reports LBPRZ (see thin.go).
	ErrNotZeroed = errors.New("new LUN does not read zeroes where it was unmapped")
	// ErrMissingTarget: the proxy's kernel cannot build a device the
	// volume needs (no dm-clone or dm-era), found before the window.
	ErrMissingTarget = errors.New("device-mapper target not available")
	// ErrDiskChanged: a LUN attached again is not the disk recorded at its
	// first attach (another WWID or size): a different LUN is mapped.
	ErrDiskChanged = errors.New("LUN is not the one recorded")
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

// HostSessionError refuses a handover while the host still has a session on
// the proxy's export: tearing the export down would fail the host's I/O.
// It unwraps to ErrNotReady (the CLI's "not ready" exit code): move the
// host (the pre-handover hooks' job), then rerun handover, or pass force.
type HostSessionError struct {
	// Volume is the volume's name.
	Volume string
	// HostIQN is the volume's application host.
	HostIQN string
	// ExportIQN is the proxy's target the sessions are on.
	ExportIQN string
	// Sessions are the initiator names logged in to the export.
	Sessions []string
}

// Error implements error.
func (e *HostSessionError) Error() string {
	who := e.HostIQN
	if len(e.Sessions) > 0 && (len(e.Sessions) > 1 || e.Sessions[0] != e.HostIQN) {
		who = fmt.Sprintf("%s (sessions: %s)", e.HostIQN, strings.Join(e.Sessions, ", "))
	}
	return fmt.Sprintf("plan: volume %s: %v: host %s still has a session on the proxy's export %s: "+
		"on the host, log out of %s and log in to the new array (the pre-handover hooks' job; they run again on the next attempt), "+
		"then rerun `lunferry migrate handover %s`; --force tears the export down under the host, failing its I/O to the proxy",
		e.Volume, ErrNotReady, who, e.ExportIQN, e.ExportIQN, e.Volume)
}

// Unwrap makes errors.Is(err, ErrNotReady) true.
func (e *HostSessionError) Unwrap() error { return ErrNotReady }
