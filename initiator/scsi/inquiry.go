package scsi

import (
	"fmt"
	"strings"
)

// Inquiry is the standard INQUIRY data of a logical unit (SPC-4 6.6.2).
type Inquiry struct {
	// PeripheralQualifier is byte 0 bits 7-5: 0 when a logical unit is
	// connected, 1 or 3 when none is.
	PeripheralQualifier uint8 `json:"peripheralQualifier,omitempty"`
	// DeviceType is byte 0 bits 4-0: 0 for a disk (direct access block
	// device).
	DeviceType uint8 `json:"deviceType"`
	// Version is the SPC version the device claims (6: SPC-4).
	Version uint8 `json:"version"`
	// Vendor, Product and Revision are the T10 vendor identification
	// (bytes 8-15), product identification (16-31) and product revision
	// level (32-35), with the padding spaces and NULs at the end removed.
	Vendor   string `json:"vendor"`
	Product  string `json:"product"`
	Revision string `json:"revision"`
	// TPGS is byte 5 bits 5-4, the ALUA support: 0 none, 1 implicit,
	// 2 explicit, 3 both.
	TPGS uint8 `json:"tpgs,omitempty"`
	// ThirdPartyCopy is the 3PC bit (byte 5 bit 3): EXTENDED COPY works.
	ThirdPartyCopy bool `json:"thirdPartyCopy,omitempty"`
	// Protect is the PROTECT bit (byte 5 bit 0): T10 PI is supported.
	Protect bool `json:"protect,omitempty"`
	// MultiPort is the MULTIP bit (byte 6 bit 4).
	MultiPort bool `json:"multiPort,omitempty"`
}

// DeviceTypeDisk is the peripheral device type of a disk.
const DeviceTypeDisk = 0x00

// inquiryLen is the allocation length of a standard INQUIRY: the 36
// bytes every device has plus the version descriptors, as the kernel and
// LIO use.
const inquiryLen = 96

// inquiryCDB builds INQUIRY (SPC-4 6.6.1): EVPD in byte 1 bit 0, the page
// code in byte 2, the allocation length in bytes 3-4.
func inquiryCDB(evpd bool, page byte, alloc int) []byte {
	cdb := []byte{opInquiry, 0, page, byte(alloc >> 8), byte(alloc), 0}
	if evpd {
		cdb[1] = 1
	}
	return cdb
}

// readInquiry sends a standard INQUIRY.
func readInquiry(c Commander) (Inquiry, error) {
	b, err := dataIn(c, inquiryCDB(false, 0, inquiryLen), inquiryLen)
	if err != nil {
		return Inquiry{}, err
	}
	return parseInquiry(b)
}

// parseInquiry decodes standard INQUIRY data; it needs the 36 bytes up
// to the revision.
func parseInquiry(b []byte) (Inquiry, error) {
	if len(b) < 36 {
		return Inquiry{}, fmt.Errorf("%w: INQUIRY data of %d bytes, want at least 36", ErrMalformed, len(b))
	}
	return Inquiry{
		PeripheralQualifier: b[0] >> 5,
		DeviceType:          b[0] & 0x1f,
		Version:             b[2],
		Vendor:              asciiField(b[8:16]),
		Product:             asciiField(b[16:32]),
		Revision:            asciiField(b[32:36]),
		TPGS:                b[5] >> 4 & 3,
		ThirdPartyCopy:      b[5]&0x08 != 0,
		Protect:             b[5]&0x01 != 0,
		MultiPort:           b[6]&0x10 != 0,
	}, nil
}

// asciiField returns a left-aligned ASCII field without the spaces and
// NULs that pad it.
func asciiField(b []byte) string {
	return strings.TrimRight(string(b), " \x00")
}
