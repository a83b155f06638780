package scsi

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// VPD pages this package reads (SPC-4 7.8, SBC-3 6.6).
const (
	PageSupported       = 0x00 // supported VPD pages
	PageUnitSerial      = 0x80 // unit serial number
	PageDeviceID        = 0x83 // device identification
	PageBlockLimits     = 0xb0 // block limits
	PageProvisioning    = 0xb2 // logical block provisioning
	vpdFirstAlloc       = 255  // the kernel's first try (scsi_get_vpd_buf)
	vpdMaxLen           = 4 + 0xffff
	vpdHeaderLen        = 4
	vpdPageLengthOffset = 2
)

// readVPD fetches VPD page and returns its payload (the bytes after the
// 4-byte header: device type, page code, page length).
func readVPD(c Commander, page byte) ([]byte, error) {
	mk := func(alloc int) []byte { return inquiryCDB(true, page, min(alloc, 0xffff)) }
	b, err := dataInGrowing(c, mk, vpdFirstAlloc, vpdMaxLen, func(b []byte) (int, bool) {
		if len(b) < vpdHeaderLen {
			return 0, false
		}
		return vpdHeaderLen + int(binary.BigEndian.Uint16(b[vpdPageLengthOffset:])), true
	})
	if err != nil {
		return nil, err
	}
	return vpdPayload(b, page)
}

// vpdPayload checks a VPD page's header (byte 1: page code, bytes 2-3:
// page length) and returns the payload, cut to the page length.
func vpdPayload(b []byte, page byte) ([]byte, error) {
	if len(b) < vpdHeaderLen {
		return nil, fmt.Errorf("%w: VPD page %#02x of %d bytes", ErrMalformed, page, len(b))
	}
	if b[1] != page {
		return nil, fmt.Errorf("%w: asked for VPD page %#02x, got %#02x", ErrMalformed, page, b[1])
	}
	n := int(binary.BigEndian.Uint16(b[vpdPageLengthOffset:]))
	return b[vpdHeaderLen:min(len(b), vpdHeaderLen+n)], nil
}

// readUnitSerial fetches VPD page 0x80: the product serial number, ASCII,
// here without the NULs that pad it (LIO ends it with one).
func readUnitSerial(c Commander) (string, error) {
	p, err := readVPD(c, PageUnitSerial)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(p), "\x00"), nil
}
