package lio

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidName is wrapped by every error about a malformed name: an
// iSCSI name (ValidateIQN), a storage object name without NamePrefix, a
// portal address.
var ErrInvalidName = errors.New("invalid name")

// ErrInvalidConfig is wrapped by errors about a desired state that lio will
// not write (for example a CHAP secret with a newline, or an attribute that
// would switch off ACL enforcement).
var ErrInvalidConfig = errors.New("invalid configuration")

// ErrNotOwned is wrapped when lio is asked to change or remove a configfs
// object that lunferry did not create (see the package doc for the
// ownership rule). lio never touches such objects.
var ErrNotOwned = errors.New("object not created by lunferry")

// ErrNotFound is returned (wrapped) by Get and friends when the object does
// not exist in configfs.
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped when an object with the wanted name exists but is
// configured differently in a way lio cannot change in place (for example
// a storage object with the same name on another device).
var ErrConflict = errors.New("conflicting object exists")

// ErrAddressNotLocal is wrapped when a portal address is not configured on
// any interface of this machine.
var ErrAddressNotLocal = errors.New("portal address not on any local interface")

// SessionsActiveError is returned by Teardown when initiators are logged in
// to the target and TeardownOptions.Force is not set.
type SessionsActiveError struct {
	// TargetIQN is the target that still has sessions.
	TargetIQN string
	// Sessions are the logged-in initiators.
	Sessions []Session
}

// Error implements error.
func (e *SessionsActiveError) Error() string {
	names := make([]string, 0, len(e.Sessions))
	for _, s := range e.Sessions {
		names = append(names, s.InitiatorIQN)
	}
	return fmt.Sprintf("lio: target %s has %d logged-in initiator(s) (%s): log them out first, or force the teardown to drop their sessions",
		e.TargetIQN, len(e.Sessions), strings.Join(names, ", "))
}

// errPrefix starts the message of every error lio returns from a call
// that reads or writes configfs.
const errPrefix = "lio: "

// errf is lio's one error helper: fmt.Errorf with "lio: " in front. An
// error argument that already starts with "lio: " (a lio error given more
// context) loses that prefix in the text, so that messages read
// "lio: export x: create tpg ..." rather than repeating "lio:"; %w still
// hands it to errors.Is and errors.As. Checks that only judge a value
// (ValidateIQN, CHAP.Validate, soSpec.validate, checkPortals, ...) return
// "<sentinel>: <detail>" without the prefix, for their caller to put in
// context with errf.
func errf(format string, args ...any) error {
	args = append([]any(nil), args...)
	for i, a := range args {
		if err, ok := a.(error); ok && strings.HasPrefix(err.Error(), errPrefix) {
			args[i] = &unprefixed{err}
		}
	}
	return fmt.Errorf(errPrefix+format, args...)
}

// unprefixed shows a lio error without its "lio: " prefix.
type unprefixed struct{ err error }

// Error implements error.
func (u *unprefixed) Error() string { return strings.TrimPrefix(u.err.Error(), errPrefix) }

// Unwrap returns the lio error.
func (u *unprefixed) Unwrap() error { return u.err }
