package scsi

import (
	"encoding/binary"
	"fmt"
)

// Capacity is the READ CAPACITY(16) parameter data (SBC-3 5.16.2).
type Capacity struct {
	// LastLBA is bytes 0-7, the last logical block address.
	LastLBA uint64 `json:"lastLBA"`
	// LogicalBlockSize is bytes 8-11, in bytes.
	LogicalBlockSize uint32 `json:"logicalBlockSize"`
	// ProtectionType is P_TYPE (byte 12 bits 3-1); ProtectionEnabled is
	// PROT_EN (bit 0). Type n+1 is in use when enabled.
	ProtectionType    uint8 `json:"protectionType,omitempty"`
	ProtectionEnabled bool  `json:"protectionEnabled,omitempty"`
	// PhysicalBlockExponent is LBPPBE (byte 13 bits 3-0): 2^n logical
	// blocks per physical block.
	PhysicalBlockExponent uint8 `json:"physicalBlockExponent,omitempty"`
	// LBPME: the LU is thin provisioned (byte 14 bit 7).
	LBPME bool `json:"lbpme,omitempty"`
	// LBPRZ: unmapped blocks read as zeroes (byte 14 bit 6).
	LBPRZ bool `json:"lbprz,omitempty"`
	// LowestAlignedLBA is byte 14 bits 5-0 and byte 15: the first
	// logical block that starts a physical block.
	LowestAlignedLBA uint16 `json:"lowestAlignedLBA,omitempty"`
}

// Bytes returns the size of the logical unit in bytes.
func (c Capacity) Bytes() uint64 { return (c.LastLBA + 1) * uint64(c.LogicalBlockSize) }

// PhysicalBlockSize returns the physical block size in bytes.
func (c Capacity) PhysicalBlockSize() uint32 { return c.LogicalBlockSize << c.PhysicalBlockExponent }

// readCapacity16Len is the parameter data's length.
const readCapacity16Len = 32

// readCapacity16CDB builds READ CAPACITY(16): SERVICE ACTION IN(16) with
// service action 10h in byte 1, the allocation length in bytes 10-13.
func readCapacity16CDB() []byte {
	return []byte{opServiceActionIn16, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, readCapacity16Len, 0, 0}
}

// readCapacity16 sends READ CAPACITY(16).
func readCapacity16(c Commander) (Capacity, error) {
	b, err := dataIn(c, readCapacity16CDB(), readCapacity16Len)
	if err != nil {
		return Capacity{}, err
	}
	return parseCapacity16(b)
}

// parseCapacity16 decodes the parameter data; it needs the first 16
// bytes (the rest is reserved).
func parseCapacity16(b []byte) (Capacity, error) {
	if len(b) < 16 {
		return Capacity{}, fmt.Errorf("%w: READ CAPACITY(16) data of %d bytes, want at least 16", ErrMalformed, len(b))
	}
	c := Capacity{
		LastLBA:               binary.BigEndian.Uint64(b[0:8]),
		LogicalBlockSize:      binary.BigEndian.Uint32(b[8:12]),
		ProtectionType:        b[12] >> 1 & 7,
		ProtectionEnabled:     b[12]&1 != 0,
		PhysicalBlockExponent: b[13] & 0xf,
		LBPME:                 b[14]&0x80 != 0,
		LBPRZ:                 b[14]&0x40 != 0,
		LowestAlignedLBA:      binary.BigEndian.Uint16(b[14:16]) & 0x3fff,
	}
	if c.LogicalBlockSize == 0 {
		return Capacity{}, fmt.Errorf("%w: READ CAPACITY(16) reports a logical block length of 0", ErrMalformed)
	}
	return c, nil
}
