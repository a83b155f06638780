package scsi

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// CodeSet says how a designator is encoded (byte 0 bits 3-0).
type CodeSet uint8

// The code sets of SPC-4 table 487.
const (
	CodeSetBinary CodeSet = 1
	CodeSetASCII  CodeSet = 2
	CodeSetUTF8   CodeSet = 3
)

// Association says what a designator names (byte 1 bits 5-4).
type Association uint8

// The associations of SPC-4 table 488.
const (
	AssocLogicalUnit  Association = 0 // the addressed logical unit
	AssocTargetPort   Association = 1 // the port the command came through
	AssocTargetDevice Association = 2 // the SCSI target device
)

// String names the association.
func (a Association) String() string {
	switch a {
	case AssocLogicalUnit:
		return "logical unit"
	case AssocTargetPort:
		return "target port"
	case AssocTargetDevice:
		return "target device"
	}
	return fmt.Sprintf("association %d", uint8(a))
}

// DesignatorType is the kind of a designator (byte 1 bits 3-0).
type DesignatorType uint8

// The designator types of SPC-4 table 489 (and SPC-5's UUID).
const (
	TypeVendorSpecific   DesignatorType = 0x0
	TypeT10VendorID      DesignatorType = 0x1
	TypeEUI64            DesignatorType = 0x2
	TypeNAA              DesignatorType = 0x3
	TypeRelativePort     DesignatorType = 0x4
	TypeTargetPortGroup  DesignatorType = 0x5
	TypeLogicalUnitGroup DesignatorType = 0x6
	TypeMD5              DesignatorType = 0x7
	TypeSCSIName         DesignatorType = 0x8
	TypeProtocolPort     DesignatorType = 0x9
	TypeUUID             DesignatorType = 0xa
)

// NAA formats (the first nibble of an NAA designator, SPC-4 table 502).
const (
	NAAIEEEExtended           = 0x2 // 8 bytes: NAA, vendor bits, OUI, vendor bits
	NAALocallyAssigned        = 0x3 // 8 bytes, no company
	NAAIEEERegistered         = 0x5 // 8 bytes: NAA, OUI, 36 vendor bits
	NAAIEEERegisteredExtended = 0x6 // 16 bytes: NAA, OUI, 100 vendor bits
)

// Designator is one designation descriptor of VPD page 0x83 (SPC-4
// 7.8.6.1): a 4-byte header (protocol identifier and code set; PIV,
// association and designator type; reserved; length) and the designator.
type Designator struct {
	// Protocol is the protocol identifier (byte 0 bits 7-4; 5 is iSCSI),
	// meaningful when PIV is set.
	Protocol uint8 `json:"protocol,omitempty"`
	// CodeSet is the encoding of Value.
	CodeSet CodeSet `json:"codeSet"`
	// PIV says Protocol is valid (byte 1 bit 7).
	PIV bool `json:"piv,omitempty"`
	// Association is what the designator names.
	Association Association `json:"association"`
	// Type is the designator type.
	Type DesignatorType `json:"type"`
	// Value is the designator itself.
	Value HexBytes `json:"value"`
}

// HexBytes is bytes that marshal as a hex string.
type HexBytes []byte

// MarshalText writes lower-case hex.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText reads hex.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("scsi: designator value: %w", err)
	}
	*h = v
	return nil
}

// parseDeviceID decodes the payload of VPD page 0x83 into its
// designators, in page order.
func parseDeviceID(p []byte) ([]Designator, error) {
	var out []Designator
	for off := 0; off < len(p); {
		if len(p)-off < 4 {
			return nil, fmt.Errorf("%w: VPD page 0x83: %d stray bytes at offset %d", ErrMalformed, len(p)-off, off+vpdHeaderLen)
		}
		n := int(p[off+3])
		if off+4+n > len(p) {
			return nil, fmt.Errorf("%w: VPD page 0x83: designator at offset %d runs %d bytes past the page", ErrMalformed, off+vpdHeaderLen, off+4+n-len(p))
		}
		out = append(out, Designator{
			Protocol:    p[off] >> 4,
			CodeSet:     CodeSet(p[off] & 0xf),
			PIV:         p[off+1]&0x80 != 0,
			Association: Association(p[off+1] >> 4 & 3),
			Type:        DesignatorType(p[off+1] & 0xf),
			Value:       HexBytes(append([]byte(nil), p[off+4:off+4+n]...)),
		})
		off += 4 + n
	}
	return out, nil
}

// NAA returns the NAA format of an NAA designator (its first nibble), 0
// for other designators.
func (d Designator) NAA() uint8 {
	if d.Type != TypeNAA || len(d.Value) == 0 {
		return 0
	}
	return d.Value[0] >> 4
}

// CompanyID returns the IEEE company id (OUI) a designator carries: bits
// 59-36 of an NAA 5 or 6 designator (after the NAA nibble), bytes 2-4 of
// NAA 2, bytes 0-2 of an 8- or 12-byte EUI-64 and bytes 8-10 of a
// 16-byte one.
func (d Designator) CompanyID() (uint32, bool) {
	v := d.Value
	switch {
	case d.Type == TypeNAA && (d.NAA() == NAAIEEERegistered && len(v) == 8 || d.NAA() == NAAIEEERegisteredExtended && len(v) == 16):
		return binary.BigEndian.Uint32(v[0:4]) >> 4 & 0xffffff, true
	case d.Type == TypeNAA && d.NAA() == NAAIEEEExtended && len(v) == 8:
		return uint32(v[2])<<16 | uint32(v[3])<<8 | uint32(v[4]), true
	case d.Type == TypeEUI64 && (len(v) == 8 || len(v) == 12):
		return uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2]), true
	case d.Type == TypeEUI64 && len(v) == 16:
		return uint32(v[8])<<16 | uint32(v[9])<<8 | uint32(v[10]), true
	}
	return 0, false
}

// ID names the designator: for the ones that name a logical unit, the
// way Linux prints them in /sys/block/sdX/device/wwid ("naa.<hex>",
// "eui.<hex>", "t10.<ASCII>", the SCSI name string itself).
func (d Designator) ID() string {
	switch d.Type {
	case TypeNAA:
		return "naa." + hex.EncodeToString(d.Value)
	case TypeEUI64:
		return "eui." + hex.EncodeToString(d.Value)
	case TypeT10VendorID:
		return "t10." + kernelEscape(d.Value)
	case TypeSCSIName:
		return strings.TrimRight(string(d.Value), "\x00")
	case TypeMD5:
		return "md5." + hex.EncodeToString(d.Value)
	case TypeUUID:
		return "uuid." + hex.EncodeToString(d.Value)
	case TypeRelativePort, TypeTargetPortGroup, TypeLogicalUnitGroup:
		if len(d.Value) == 4 {
			return fmt.Sprintf("%s %d", d.Family(), binary.BigEndian.Uint16(d.Value[2:]))
		}
	}
	if d.CodeSet == CodeSetASCII || d.CodeSet == CodeSetUTF8 {
		return fmt.Sprintf("%s %q", d.Family(), string(d.Value))
	}
	return fmt.Sprintf("%s %s", d.Family(), hex.EncodeToString(d.Value))
}

// String reads e.g. "naa.600a0980... (naa-6, logical unit)".
func (d Designator) String() string {
	return fmt.Sprintf("%s (%s, %s)", d.ID(), d.Family(), d.Association)
}
