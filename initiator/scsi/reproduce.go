package scsi

import (
	"fmt"
	"strings"
)

// Reproducible says whether LIO can emit d exactly, as the designator a
// host keys on, and if not, why. Only a 16-byte NAA 6 designator of the
// logical unit can be: LIO builds its one NAA designator from
// wwn/company_id and the hex digits of wwn/vpd_unit_serial (see LIONAA),
// which together cover all of its 124 bits after the NAA nibble.
func Reproducible(d Designator) (bool, string) {
	if d.Association != AssocLogicalUnit {
		return false, fmt.Sprintf("it names the %s, not the logical unit", d.Association)
	}
	switch f := d.Family(); f {
	case FamilyNAA6:
		if len(d.Value) != 16 {
			return false, fmt.Sprintf("an NAA 6 designator of %d bytes is malformed (16 expected)", len(d.Value))
		}
		if cid, _ := d.CompanyID(); cid == 0 {
			return false, "its company id is 0, which lio takes for LIO's default (00-14-05)"
		}
		return true, ""
	case FamilyNAA5, FamilyNAA3, FamilyNAA2:
		return false, fmt.Sprintf("LIO emits only NAA 6 designators (16 bytes), never %s (8 bytes)", f)
	case FamilyT10VendorID:
		return false, "LIO's T10 vendor ID designator is its vendor, product and unit serial, and comes with an NAA 6 designator, which hosts prefer"
	case FamilySCSIName:
		return false, "LIO's SCSI name string designators name its target port and device, not the logical unit"
	}
	return false, fmt.Sprintf("LIO emits no %s designator", d.Family())
}

// reproduceNAA returns the company id and unit serial that make LIO emit
// the NAA 6 designator d. The old LUN's own serial is used when LIO
// accepts it as it is and its first 25 hex digits are the designator's,
// so that VPD page 0x80 stays the same too (kept); otherwise the serial
// is those 25 digits.
func reproduceNAA(d Designator, oldSerial string) (companyID uint32, serial string, kept bool) {
	companyID, _ = d.CompanyID()
	want := naaVendorNibbles(d.Value)
	if lioAccepts(oldSerial, 253) && string(serialNibbles(oldSerial, lioNAANibbles)) == string(want) {
		return companyID, oldSerial, true
	}
	var s strings.Builder
	for _, v := range want {
		s.WriteByte("0123456789abcdef"[v])
	}
	return companyID, s.String(), false
}

// lioAccepts reports whether LIO stores s unchanged in a wwn attribute
// of at most n bytes: printable ASCII (lio and the kernel refuse
// anything else) without white space at either end (the kernel strips
// it).
func lioAccepts(s string, n int) bool {
	if s == "" || len(s) > n || strings.TrimSpace(s) != s {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
