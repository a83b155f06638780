package scsi

import (
	"encoding/binary"
	"fmt"
)

// BlockLimits is VPD page 0xB0 (SBC-3 6.6.4). Lengths count logical
// blocks; 0 means the device states no limit. Fields the page is too
// short to hold are 0 (a page of length 0x10 ends after
// MaxPrefetchLength, as LIO's does without thin provisioning).
type BlockLimits struct {
	// WSNZ: WRITE SAME with a zero length is refused (byte 4 bit 0).
	WSNZ bool `json:"wsnz,omitempty"`
	// MaxCompareAndWrite is byte 5.
	MaxCompareAndWrite uint8 `json:"maxCompareAndWrite,omitempty"`
	// OptimalGranularity is bytes 6-7, the optimal transfer length
	// granularity.
	OptimalGranularity uint16 `json:"optimalGranularity,omitempty"`
	// MaxTransferLength is bytes 8-11.
	MaxTransferLength uint32 `json:"maxTransferLength,omitempty"`
	// OptimalTransferLength is bytes 12-15.
	OptimalTransferLength uint32 `json:"optimalTransferLength,omitempty"`
	// MaxPrefetchLength is bytes 16-19.
	MaxPrefetchLength uint32 `json:"maxPrefetchLength,omitempty"`
	// MaxUnmapLBACount is bytes 20-23.
	MaxUnmapLBACount uint32 `json:"maxUnmapLBACount,omitempty"`
	// MaxUnmapDescriptors is bytes 24-27, the maximum UNMAP block
	// descriptor count.
	MaxUnmapDescriptors uint32 `json:"maxUnmapDescriptors,omitempty"`
	// OptimalUnmapGranularity is bytes 28-31.
	OptimalUnmapGranularity uint32 `json:"optimalUnmapGranularity,omitempty"`
	// UnmapAlignmentValid is UGAVALID (byte 32 bit 7); UnmapAlignment is
	// the rest of bytes 32-35.
	UnmapAlignmentValid bool   `json:"unmapAlignmentValid,omitempty"`
	UnmapAlignment      uint32 `json:"unmapAlignment,omitempty"`
	// MaxWriteSameLength is bytes 36-43.
	MaxWriteSameLength uint64 `json:"maxWriteSameLength,omitempty"`
}

// parseBlockLimits decodes the payload of VPD page 0xB0 (offsets below
// are those of the whole page, header included).
func parseBlockLimits(p []byte) (BlockLimits, error) {
	if len(p) < 12 {
		return BlockLimits{}, fmt.Errorf("%w: VPD page 0xb0 with %d bytes of payload, want at least 12", ErrMalformed, len(p))
	}
	at := func(off, n int) []byte { // off: page offset; nil past the end
		if off-vpdHeaderLen+n > len(p) {
			return nil
		}
		return p[off-vpdHeaderLen : off-vpdHeaderLen+n]
	}
	u32 := func(off int) uint32 {
		if b := at(off, 4); b != nil {
			return binary.BigEndian.Uint32(b)
		}
		return 0
	}
	l := BlockLimits{
		WSNZ:                    at(4, 1)[0]&1 != 0,
		MaxCompareAndWrite:      at(5, 1)[0],
		OptimalGranularity:      binary.BigEndian.Uint16(at(6, 2)),
		MaxTransferLength:       u32(8),
		OptimalTransferLength:   u32(12),
		MaxPrefetchLength:       u32(16),
		MaxUnmapLBACount:        u32(20),
		MaxUnmapDescriptors:     u32(24),
		OptimalUnmapGranularity: u32(28),
		UnmapAlignmentValid:     u32(32)&0x80000000 != 0,
		UnmapAlignment:          u32(32) & 0x7fffffff,
	}
	if b := at(36, 8); b != nil {
		l.MaxWriteSameLength = binary.BigEndian.Uint64(b)
	}
	return l, nil
}
