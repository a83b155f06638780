package main

import (
	"context"
	"errors"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

// Exit codes of lunferry. Runbooks branch on them; they are listed in
// `lunferry --help`.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitError: an unexpected failure (kernel, I/O); the message says
	// what failed. The state records where the step stopped.
	ExitError = 1
	// ExitUsage: bad command line or volume description (flags, runbook).
	ExitUsage = 2
	// ExitRefused: refused for safety: wrong step, conflicting volume,
	// unknown kernel object with lunferry's name, LUN size mismatch, same
	// LUN as old and new, corrupt or newer state file, a device-mapper target
	// the kernel lacks. Nothing was changed.
	ExitRefused = 3
	// ExitNotReady: not yet: e.g. finalize before hydration completes, or
	// the host did not log in in time. Retry later.
	ExitNotReady = 4
	// ExitLocked: another lunferry holds the state directory's lock.
	ExitLocked = 5
	// ExitHook: a hook failed or hung.
	ExitHook = 6
	// ExitISCSI: an array portal is unreachable or refused the login.
	ExitISCSI = 7
	// ExitPreflight: doctor found gaps.
	ExitPreflight = 8
	// ExitMismatch: verify found data that differs between the LUNs.
	ExitMismatch = 9
	// ExitInterrupted: interrupted by a signal; rerun the command to
	// resume.
	ExitInterrupted = 130
)

const exitCodesHelp = `EXIT CODES:
   0    ok
   1    error (kernel, I/O; the state records where the step stopped: rerun or abort)
   2    usage: bad flags, arguments, volume description or unknown volume
   3    refused for safety (wrong step, conflict, unknown object, size mismatch,
        same LUN, corrupt or newer state); nothing was changed
   4    not ready yet (finalize before hydration completes, host not logged in
        at cutover, host still logged in to the proxy at handover)
   5    state directory locked by another lunferry
   6    a hook failed or hung
   7    iSCSI portal unreachable or login refused
   8    doctor found gaps
   9    verify found data that differs between the old and the new LUN
   130  interrupted; rerun the command to resume`

// usageError marks command-line mistakes.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, plan.ErrInvalidSpec), errors.Is(err, plan.ErrNotFound):
		return ExitUsage
	case errors.Is(err, plan.ErrLocked):
		return ExitLocked
	case errors.Is(err, plan.ErrNotReady), errors.Is(err, plan.ErrSessionTimeout), errors.Is(err, plan.ErrStalled):
		return ExitNotReady
	case errors.Is(err, plan.ErrHook):
		return ExitHook
	case errors.Is(err, plan.ErrUnreachable), errors.Is(err, plan.ErrLoginRefused):
		return ExitISCSI
	case errors.Is(err, plan.ErrWrongStep), errors.Is(err, plan.ErrConflict), errors.Is(err, plan.ErrUnknownObject),
		errors.Is(err, plan.ErrSizeMismatch), errors.Is(err, plan.ErrSameLUN), errors.Is(err, plan.ErrStateCorrupt),
		errors.Is(err, plan.ErrStateVersion), errors.Is(err, plan.ErrFaulty), errors.Is(err, plan.ErrDiskChanged),
		errors.Is(err, plan.ErrMetadataLost), errors.Is(err, plan.ErrDrift), errors.Is(err, plan.ErrIdentity),
		errors.Is(err, plan.ErrReservations), errors.Is(err, plan.ErrFenceRefused),
		errors.Is(err, plan.ErrWriteThrough), errors.Is(err, plan.ErrHostWrites), errors.Is(err, plan.ErrMissingTarget),
		errors.Is(err, plan.ErrNotZeroed):
		return ExitRefused
	case errors.Is(err, clone.ErrMismatch):
		return ExitMismatch
	case errors.Is(err, errPreflight):
		return ExitPreflight
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	}
	return ExitError
}

var errPreflight = errors.New("preflight found gaps")
