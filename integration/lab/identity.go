package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// LUNIdentity is the SCSI identity a real array's LUN has and a lab
// array's storage object can be given: what LIO shows a host in INQUIRY,
// VPD pages 0x80 and 0x83 and READ CAPACITY. Empty fields keep LIO's own.
type LUNIdentity struct {
	// CompanyID is wwn/company_id, the IEEE OUI of LIO's NAA 6 designator
	// (e.g. 0x00a098, NetApp's).
	CompanyID uint32
	// UnitSerial is wwn/vpd_unit_serial (VPD 0x80); LIO takes the NAA 6
	// designator's vendor part from its first 25 hex digits.
	UnitSerial string
	// Vendor, Product and Revision are the INQUIRY strings
	// (wwn/vendor_id, product_id, revision).
	Vendor, Product, Revision string
	// BlockSize is attrib/block_size, the logical block size.
	BlockSize int
	// WriteCache sets attrib/emulate_write_cache (fileio): the LUN reports
	// a volatile write cache (WCE=1) and takes FUA writes, as many arrays
	// do; unset, a fileio LUN reports write-through and refuses FUA.
	WriteCache bool
	// Thin makes the LUN thin provisioned (attrib/emulate_tpu: LBPME and
	// UNMAP), as most arrays' LUNs are.
	Thin bool
	// ZeroesUnmapped sets attrib/unmap_zeroes_data: a thin LUN reports
	// that unmapped blocks read as zeroes (LBPRZ), as a fileio LUN over a
	// file (UNMAP punches holes) does truthfully. LIO's default is 0.
	ZeroesUnmapped bool
}

// SetIdentity gives the array's storage object id. LIO refuses these
// settings while the storage object is exported, so LUN 0 is taken out of
// the target (with the ACLs' mappings), the settings are written and the
// LUN and ACLs are put back: sessions to the array are dropped, so call
// it right after Up, before anyone logs in. The array keeps it (Identity):
// save the lab config for Up to give it again after a reboot.
func (a *Array) SetIdentity(id LUNIdentity) error {
	block, err := a.block()
	if err != nil {
		return err
	}
	acls := a.ACLs
	if err := a.SetACLs(); err != nil {
		return err
	}
	link := filepath.Join(a.lunDir(), "labarray_so")
	for _, p := range []string{link, a.lunDir()} {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("lab: array %s: unexport LUN 0: %w", a.Name, err)
		}
	}
	so := filepath.Join(a.hbaDir(block), a.soName())
	if err := writeIdentity(so, id); err != nil {
		return fmt.Errorf("lab: array %s: %w", a.Name, err)
	}
	a.Identity = &id
	if err := mkdir(a.lunDir()); err != nil {
		return err
	}
	if err := symlink(so, link); err != nil {
		return err
	}
	return a.SetACLs(acls...)
}

// reapplyIdentity gives the storage object so, just created and not yet
// exported, the identity SetIdentity gave the array: LIO forgets it with
// the storage object (a reboot), as a real array would not.
func (a *Array) reapplyIdentity(so string) error {
	if a.Identity == nil {
		return nil
	}
	if err := writeIdentity(so, *a.Identity); err != nil {
		return fmt.Errorf("lab: array %s: identity: %w", a.Name, err)
	}
	return nil
}

// writeIdentity writes id's non-empty settings under storage object so.
func writeIdentity(so string, id LUNIdentity) error {
	settings := []struct{ file, value string }{
		{"wwn/vpd_unit_serial", id.UnitSerial},
		{"wwn/vendor_id", id.Vendor},
		{"wwn/product_id", id.Product},
		{"wwn/revision", id.Revision},
	}
	if id.CompanyID != 0 {
		settings = append(settings, struct{ file, value string }{"wwn/company_id", fmt.Sprintf("%#x", id.CompanyID)})
	}
	if id.WriteCache {
		settings = append(settings, struct{ file, value string }{"attrib/emulate_write_cache", "1"})
	}
	if id.BlockSize != 0 {
		settings = append(settings, struct{ file, value string }{"attrib/block_size", strconv.Itoa(id.BlockSize)})
	}
	if id.Thin {
		settings = append(settings, struct{ file, value string }{"attrib/emulate_tpu", "1"})
	}
	if id.ZeroesUnmapped {
		settings = append(settings, struct{ file, value string }{"attrib/unmap_zeroes_data", "1"})
	}
	for _, s := range settings {
		if s.value == "" {
			continue
		}
		if err := write(filepath.Join(so, s.file), s.value); err != nil {
			return err
		}
	}
	return nil
}
