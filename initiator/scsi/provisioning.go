package scsi

import "fmt"

// Provisioning is VPD page 0xB2, logical block provisioning (SBC-4
// 6.6.6).
type Provisioning struct {
	// ThresholdExponent is byte 4.
	ThresholdExponent uint8 `json:"thresholdExponent,omitempty"`
	// LBPU: UNMAP works (byte 5 bit 7).
	LBPU bool `json:"lbpu,omitempty"`
	// LBPWS: WRITE SAME(16) with UNMAP works (bit 6).
	LBPWS bool `json:"lbpws,omitempty"`
	// LBPWS10: WRITE SAME(10) with UNMAP works (bit 5).
	LBPWS10 bool `json:"lbpws10,omitempty"`
	// LBPRZ is bits 4-2: 1 when unmapped blocks read as zeroes.
	LBPRZ uint8 `json:"lbprz,omitempty"`
	// ANCSup: ANCHOR works (bit 1).
	ANCSup bool `json:"ancSup,omitempty"`
	// DP: a provisioning group descriptor follows (bit 0).
	DP bool `json:"dp,omitempty"`
	// Type is byte 6 bits 2-0: 0 not reported, 1 resource provisioned,
	// 2 thin provisioned.
	Type uint8 `json:"type,omitempty"`
}

// parseProvisioning decodes the payload of VPD page 0xB2 (page byte n is
// payload byte n-4).
func parseProvisioning(p []byte) (Provisioning, error) {
	if len(p) < 2 {
		return Provisioning{}, fmt.Errorf("%w: VPD page 0xb2 with %d bytes of payload, want at least 2", ErrMalformed, len(p))
	}
	v := Provisioning{
		ThresholdExponent: p[0],
		LBPU:              p[1]&0x80 != 0,
		LBPWS:             p[1]&0x40 != 0,
		LBPWS10:           p[1]&0x20 != 0,
		LBPRZ:             p[1] >> 2 & 7,
		ANCSup:            p[1]&0x02 != 0,
		DP:                p[1]&0x01 != 0,
	}
	if len(p) > 2 {
		v.Type = p[2] & 7
	}
	return v, nil
}
