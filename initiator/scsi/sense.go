package scsi

import "fmt"

// SenseKey is the sense key of sense data (SPC-4 table 48).
type SenseKey uint8

// The sense keys.
const (
	SenseNoSense        SenseKey = 0x0
	SenseRecoveredError SenseKey = 0x1
	SenseNotReady       SenseKey = 0x2
	SenseMediumError    SenseKey = 0x3
	SenseHardwareError  SenseKey = 0x4
	SenseIllegalRequest SenseKey = 0x5
	SenseUnitAttention  SenseKey = 0x6
	SenseDataProtect    SenseKey = 0x7
	SenseBlankCheck     SenseKey = 0x8
	SenseVendorSpecific SenseKey = 0x9
	SenseCopyAborted    SenseKey = 0xa
	SenseAbortedCommand SenseKey = 0xb
	SenseVolumeOverflow SenseKey = 0xd
	SenseMiscompare     SenseKey = 0xe
	SenseCompleted      SenseKey = 0xf
)

var senseKeyNames = [16]string{
	"NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
	"ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
	"COPY ABORTED", "ABORTED COMMAND", "RESERVED (0xc)", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED",
}

// String names the key as SPC-4 does.
func (k SenseKey) String() string { return senseKeyNames[k&0xf] }

// Sense is decoded sense data, fixed or descriptor format (SPC-4 4.5).
type Sense struct {
	// Key is the sense key.
	Key SenseKey
	// ASC and ASCQ are the additional sense code and qualifier.
	ASC, ASCQ uint8
	// Deferred reports an error of an earlier command (response code
	// 71h or 73h).
	Deferred bool
}

// String reads e.g. "ILLEGAL REQUEST, invalid field in cdb (24/00)".
func (s Sense) String() string {
	d := ascName(s.ASC, s.ASCQ)
	if d != "" {
		d += " "
	}
	deferred := ""
	if s.Deferred {
		deferred = " (deferred)"
	}
	return fmt.Sprintf("%s, %s(%02x/%02x)%s", s.Key, d, s.ASC, s.ASCQ, deferred)
}

// parseSense decodes sense data. Fixed format (response code 70h/71h):
// key in byte 2 bits 3-0, ASC and ASCQ in bytes 12 and 13 when the
// additional length (byte 7) reaches them. Descriptor format (72h/73h):
// key, ASC and ASCQ in bytes 1, 2 and 3.
func parseSense(b []byte) (Sense, error) {
	if len(b) == 0 {
		return Sense{}, fmt.Errorf("%w: no sense data", ErrMalformed)
	}
	code := b[0] & 0x7f
	switch code {
	case 0x70, 0x71:
		if len(b) < 3 {
			return Sense{}, fmt.Errorf("%w: fixed sense data of %d bytes", ErrMalformed, len(b))
		}
		s := Sense{Key: SenseKey(b[2] & 0xf), Deferred: code == 0x71}
		if len(b) >= 14 && b[7] >= 6 {
			s.ASC, s.ASCQ = b[12], b[13]
		}
		return s, nil
	case 0x72, 0x73:
		if len(b) < 4 {
			return Sense{}, fmt.Errorf("%w: descriptor sense data of %d bytes", ErrMalformed, len(b))
		}
		return Sense{Key: SenseKey(b[1] & 0xf), ASC: b[2], ASCQ: b[3], Deferred: code == 0x73}, nil
	}
	return Sense{}, fmt.Errorf("%w: sense response code %#02x", ErrMalformed, code)
}

// ascName describes the additional sense codes a proxy meets when it
// reads a LUN's identity; others print as numbers only.
func ascName(asc, ascq uint8) string {
	switch asc {
	case 0x04:
		return "logical unit not ready"
	case 0x20:
		return "invalid command operation code"
	case 0x24:
		return "invalid field in cdb"
	case 0x25:
		return "logical unit not supported"
	case 0x26:
		return "invalid field in parameter list"
	case 0x29:
		return "power on, reset, or bus device reset occurred"
	case 0x2a:
		if ascq == 0x09 {
			return "capacity data has changed"
		}
		return "parameters changed"
	case 0x3a:
		return "medium not present"
	case 0x3f:
		if ascq == 0x0e {
			return "reported luns data has changed"
		}
		return "target operating conditions have changed"
	}
	return ""
}
