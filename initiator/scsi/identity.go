package scsi

import (
	"errors"
	"fmt"
	"slices"
)

// Identity is what a host sees of a logical unit and what a proxy must
// present to look like it: the standard INQUIRY data, VPD pages 0x80,
// 0x83, 0xB0 and 0xB2, and READ CAPACITY(16).
type Identity struct {
	// Inquiry is the standard INQUIRY data.
	Inquiry Inquiry `json:"inquiry"`
	// Pages are the VPD pages the device lists in page 0x00; nil when it
	// has no page 0x00.
	Pages HexBytes `json:"pages,omitempty"`
	// UnitSerial is VPD page 0x80, without padding NULs; empty when the
	// device has no page 0x80.
	UnitSerial string `json:"unitSerial,omitempty"`
	// Designators are VPD page 0x83's designation descriptors, in page
	// order.
	Designators []Designator `json:"designators"`
	// BlockLimits is VPD page 0xB0, nil when the device has none.
	BlockLimits *BlockLimits `json:"blockLimits,omitempty"`
	// Provisioning is VPD page 0xB2, nil when the device has none.
	Provisioning *Provisioning `json:"provisioning,omitempty"`
	// Capacity is READ CAPACITY(16): size and block sizes.
	Capacity Capacity `json:"capacity"`
}

// WWID returns the identifier a Linux host uses for the logical unit
// (HostWWID of its designators), e.g. "naa.600a098038304437...".
func (id Identity) WWID() string { return HostWWID(id.Designators) }

// Read opens the SCSI disk dev (e.g. /dev/sdc) and reads its Identity.
func Read(dev string) (Identity, error) {
	d, err := Open(dev)
	if err != nil {
		return Identity{}, err
	}
	defer d.Close()
	id, err := ReadFrom(d)
	if err != nil {
		return Identity{}, fmt.Errorf("scsi: identity of %s: %w", dev, err)
	}
	return id, nil
}

// ReadFrom reads an Identity through c. INQUIRY, VPD page 0x83 and READ
// CAPACITY(16) must work; pages 0x00, 0x80, 0xB0 and 0xB2 may be missing
// (not listed in page 0x00, or refused with ILLEGAL REQUEST), any other
// failure of theirs is an error.
func ReadFrom(c Commander) (Identity, error) {
	var id Identity
	var err error
	if id.Inquiry, err = readInquiry(c); err != nil {
		return Identity{}, err
	}
	pages, err := optional(true, func() ([]byte, error) { return readVPD(c, PageSupported) })
	if err != nil {
		return Identity{}, err
	}
	if pages != nil {
		id.Pages = *pages
	}
	has := func(p byte) bool { return pages == nil || slices.Contains(*pages, p) }
	serial, err := optional(has(PageUnitSerial), func() (string, error) { return readUnitSerial(c) })
	if err != nil {
		return Identity{}, err
	}
	if serial != nil {
		id.UnitSerial = *serial
	}
	if id.Designators, err = readDeviceID(c); err != nil {
		return Identity{}, err
	}
	if id.BlockLimits, err = optional(has(PageBlockLimits), func() (BlockLimits, error) { return readBlockLimits(c) }); err != nil {
		return Identity{}, err
	}
	if id.Provisioning, err = optional(has(PageProvisioning), func() (Provisioning, error) { return readProvisioning(c) }); err != nil {
		return Identity{}, err
	}
	if id.Capacity, err = readCapacity16(c); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// optional runs read when listed, and returns nil when it is not or when
// the device refuses it with ILLEGAL REQUEST.
func optional[T any](listed bool, read func() (T, error)) (*T, error) {
	if !listed {
		return nil, nil
	}
	v, err := read()
	if errors.Is(err, ErrIllegalRequest) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// readDeviceID fetches and decodes VPD page 0x83.
func readDeviceID(c Commander) ([]Designator, error) {
	p, err := readVPD(c, PageDeviceID)
	if err != nil {
		return nil, err
	}
	return parseDeviceID(p)
}

// readBlockLimits fetches and decodes VPD page 0xB0.
func readBlockLimits(c Commander) (BlockLimits, error) {
	p, err := readVPD(c, PageBlockLimits)
	if err != nil {
		return BlockLimits{}, err
	}
	return parseBlockLimits(p)
}

// readProvisioning fetches and decodes VPD page 0xB2.
func readProvisioning(c Commander) (Provisioning, error) {
	p, err := readVPD(c, PageProvisioning)
	if err != nil {
		return Provisioning{}, err
	}
	return parseProvisioning(p)
}

// ReadReservations opens the SCSI disk dev and reads its persistent
// reservations (READ KEYS and READ RESERVATION).
func ReadReservations(dev string) (Reservations, error) {
	d, err := Open(dev)
	if err != nil {
		return Reservations{}, err
	}
	defer d.Close()
	r, err := readReservations(d)
	if err != nil {
		return Reservations{}, fmt.Errorf("scsi: persistent reservations of %s: %w", dev, err)
	}
	return r, nil
}
