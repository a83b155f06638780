package scsi

import "fmt"

// Status is a SCSI status byte (SAM-5).
type Status uint8

// The status codes of SAM-5 table 38.
const (
	StatusGood                Status = 0x00
	StatusCheckCondition      Status = 0x02
	StatusConditionMet        Status = 0x04
	StatusBusy                Status = 0x08
	StatusReservationConflict Status = 0x18
	StatusTaskSetFull         Status = 0x28
	StatusACAActive           Status = 0x30
	StatusTaskAborted         Status = 0x40
)

// String names the status as SAM-5 does.
func (s Status) String() string {
	switch s {
	case StatusGood:
		return "GOOD"
	case StatusCheckCondition:
		return "CHECK CONDITION"
	case StatusConditionMet:
		return "CONDITION MET"
	case StatusBusy:
		return "BUSY"
	case StatusReservationConflict:
		return "RESERVATION CONFLICT"
	case StatusTaskSetFull:
		return "TASK SET FULL"
	case StatusACAActive:
		return "ACA ACTIVE"
	case StatusTaskAborted:
		return "TASK ABORTED"
	}
	return fmt.Sprintf("%#02x", uint8(s))
}

// Operation codes of the commands this package sends (SPC-4, SBC-3).
const (
	opInquiry              = 0x12
	opPersistentReserveIn  = 0x5e
	opPersistentReserveOut = 0x5f
	opServiceActionIn16    = 0x9e // READ CAPACITY(16) is its service action 0x10
)

// opName names an operation code in error messages.
func opName(op byte) string {
	switch op {
	case opInquiry:
		return "INQUIRY"
	case opPersistentReserveIn:
		return "PERSISTENT RESERVE IN"
	case opPersistentReserveOut:
		return "PERSISTENT RESERVE OUT"
	case opServiceActionIn16:
		return "READ CAPACITY(16)"
	}
	return fmt.Sprintf("command %#02x", op)
}
