package scsi

import (
	"errors"
	"fmt"
)

// Sentinels that callers branch on; the typed errors below match them
// with errors.Is.
var (
	// ErrNotImplemented is returned off Linux, where there is no SG_IO.
	ErrNotImplemented = errors.New("SG_IO is only available on Linux")
	// ErrIllegalRequest: the device refused the command or a field of it
	// (sense key ILLEGAL REQUEST), e.g. a VPD page it does not have.
	ErrIllegalRequest = errors.New("illegal request")
	// ErrUnitAttention: the device reports a change (reset, capacity,
	// LUN inventory) and did not run the command; sending it again works.
	ErrUnitAttention = errors.New("unit attention")
	// ErrNotReady: the logical unit cannot serve commands now.
	ErrNotReady = errors.New("not ready")
	// ErrReservationConflict: another initiator's persistent reservation
	// forbids the command on this path.
	ErrReservationConflict = errors.New("reservation conflict")
	// ErrMalformed: the device answered with data that does not follow
	// the format of the page or command.
	ErrMalformed = errors.New("malformed response")
)

// CheckConditionError is a command that ended with CHECK CONDITION, with
// the sense data the device returned.
type CheckConditionError struct {
	// Op is the command's operation code.
	Op byte
	// Sense is the decoded sense data.
	Sense Sense
}

// Error says which command failed and why, e.g. "INQUIRY: check
// condition: ILLEGAL REQUEST, invalid field in cdb (24/00)".
func (e *CheckConditionError) Error() string {
	return fmt.Sprintf("%s: check condition: %s", opName(e.Op), e.Sense)
}

// Is matches ErrIllegalRequest, ErrUnitAttention and ErrNotReady by sense
// key.
func (e *CheckConditionError) Is(target error) bool {
	switch target {
	case ErrIllegalRequest:
		return e.Sense.Key == SenseIllegalRequest
	case ErrUnitAttention:
		return e.Sense.Key == SenseUnitAttention
	case ErrNotReady:
		return e.Sense.Key == SenseNotReady
	}
	return false
}

// StatusError is a command that failed without sense data: a SCSI status
// other than GOOD or CHECK CONDITION, or a transport failure (Host, the
// kernel's DID_* code, is not 0).
type StatusError struct {
	// Op is the command's operation code.
	Op byte
	// Status is the SCSI status byte.
	Status Status
	// Host is the host (transport) status, DID_* in include/scsi/scsi.h.
	Host uint16
	// Driver is the driver status.
	Driver uint16
}

// Error names the status or the transport failure.
func (e *StatusError) Error() string {
	if e.Host != 0 {
		return fmt.Sprintf("%s: transport failure: %s", opName(e.Op), hostStatusName(e.Host))
	}
	return fmt.Sprintf("%s: status %s", opName(e.Op), e.Status)
}

// Is matches ErrReservationConflict.
func (e *StatusError) Is(target error) bool {
	return target == ErrReservationConflict && e.Host == 0 && e.Status == StatusReservationConflict
}

// hostStatusName names the DID_* codes a proxy meets.
func hostStatusName(h uint16) string {
	names := map[uint16]string{
		0x01: "DID_NO_CONNECT (the path is gone)",
		0x02: "DID_BUS_BUSY",
		0x03: "DID_TIME_OUT (the command timed out)",
		0x04: "DID_BAD_TARGET",
		0x05: "DID_ABORT",
		0x07: "DID_ERROR",
		0x08: "DID_RESET",
		0x0e: "DID_TRANSPORT_DISRUPTED (the session is recovering)",
		0x0f: "DID_TRANSPORT_FAILFAST (the session is down)",
	}
	if n, ok := names[h]; ok {
		return n
	}
	return fmt.Sprintf("host status %#02x", h)
}
