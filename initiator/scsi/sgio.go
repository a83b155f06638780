package scsi

import (
	"fmt"
	"time"
	"unsafe"
)

// sgIOHdr is the kernel's struct sg_io_hdr (include/scsi/sg.h, interface
// 'S'), laid out as C lays it out on this architecture: 88 bytes on 64-bit,
// 64 on 32-bit. The pointer fields are unsafe.Pointer, not uintptr, so the
// buffers they point to stay alive while the header does.
type sgIOHdr struct {
	interfaceID    int32          // 'S'
	dxferDirection int32          // SG_DXFER_*
	cmdLen         uint8          // CDB length
	mxSbLen        uint8          // sense buffer size
	iovecCount     uint16         // 0: dxferp is a plain buffer
	dxferLen       uint32         // data buffer size
	dxferp         unsafe.Pointer // data buffer
	cmdp           unsafe.Pointer // CDB
	sbp            unsafe.Pointer // sense buffer
	timeout        uint32         // milliseconds
	flags          uint32         // SG_FLAG_*
	packID         int32          // unused
	usrPtr         unsafe.Pointer // unused
	status         uint8          // [out] SCSI status byte
	maskedStatus   uint8          // [out] status >> 1, obsolete
	msgStatus      uint8          // [out] unused by Linux
	sbLenWr        uint8          // [out] sense bytes written
	hostStatus     uint16         // [out] DID_* of the transport
	driverStatus   uint16         // [out] DRIVER_*
	resid          int32          // [out] dxferLen minus bytes transferred
	duration       uint32         // [out] milliseconds
	info           uint32         // [out] SG_INFO_*
}

// Values of include/scsi/sg.h.
const (
	sgInterfaceID  = 'S'
	sgDxferNone    = -1
	sgDxferToDev   = -2
	sgDxferFromDev = -3
	sgIO           = 0x2285 // the SG_IO ioctl request
	senseSize      = 96     // SCSI_SENSE_BUFFERSIZE
)

// DefaultTimeout is how long one command may take when a Device sets no
// Timeout: long enough for an array failing over a controller.
const DefaultTimeout = 30 * time.Second

// newSgIOHdr fills an SG_IO header that sends cdb and reads at most
// len(data) bytes into data (none when data is empty), with sense going to
// sense. The slices must stay unchanged until the ioctl returns.
func newSgIOHdr(cdb, data, sense []byte, timeout time.Duration) *sgIOHdr {
	h := &sgIOHdr{
		interfaceID:    sgInterfaceID,
		dxferDirection: sgDxferNone,
		cmdLen:         uint8(len(cdb)),
		mxSbLen:        uint8(len(sense)),
		cmdp:           unsafe.Pointer(&cdb[0]),
		timeout:        uint32(timeout.Milliseconds()),
	}
	if len(sense) > 0 {
		h.sbp = unsafe.Pointer(&sense[0])
	}
	if len(data) > 0 {
		h.dxferDirection = sgDxferFromDev
		h.dxferLen = uint32(len(data))
		h.dxferp = unsafe.Pointer(&data[0])
	}
	return h
}

// newSgIOHdrOut fills an SG_IO header that sends cdb with data as its
// parameter data (SG_DXFER_TO_DEV).
func newSgIOHdrOut(cdb, data, sense []byte, timeout time.Duration) *sgIOHdr {
	h := newSgIOHdr(cdb, data, sense, timeout)
	if len(data) > 0 {
		h.dxferDirection = sgDxferToDev
	}
	return h
}

// result interprets a completed SG_IO header for the command whose
// operation code is op: the number of data bytes that arrived, or why the
// command failed. A transport failure (host or driver status) is a
// *StatusError (since 5.x the kernel's driver status only says DRIVER_SENSE,
// so it is reported, not checked); CHECK CONDITION a *CheckConditionError with the decoded
// sense, unless its sense key is RECOVERED ERROR (the command worked);
// any other status but GOOD and CONDITION MET a *StatusError.
func (h *sgIOHdr) result(op byte, sense []byte) (int, error) {
	n := int(h.dxferLen) - int(h.resid)
	if n < 0 || n > int(h.dxferLen) {
		n = 0
	}
	if h.hostStatus != 0 {
		return n, &StatusError{Op: op, Status: Status(h.status), Host: h.hostStatus, Driver: h.driverStatus}
	}
	switch Status(h.status) {
	case StatusGood, StatusConditionMet:
		return n, nil
	case StatusCheckCondition:
		s, err := parseSense(sense[:min(int(h.sbLenWr), len(sense))])
		if err != nil {
			return n, fmt.Errorf("%s: check condition with %w", opName(op), err)
		}
		if s.Key == SenseRecoveredError {
			return n, nil
		}
		return n, &CheckConditionError{Op: op, Sense: s}
	}
	return n, &StatusError{Op: op, Status: Status(h.status), Driver: h.driverStatus}
}
