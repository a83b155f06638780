package scsi

import "github.com/lunferry/lunferry/lio"

// What LIO shows of a storage object in VPD page 0x83
// (target_core_spc.c, spc_emulate_evpd_83), for the logical unit: an NAA
// 6 designator, a T10 vendor ID designator and a logical unit group
// designator. Its other designators name the target port and device.

// lioDefaultCompanyID is the company id LIO uses until wwn/company_id is
// written (target_core_device.c): OUI 00-14-05.
const lioDefaultCompanyID = 0x001405

// lioNAANibbles is how many hex digits of vpd_unit_serial LIO puts into
// its NAA 6 designator: the 100 bits after the NAA nibble and the
// company id (nibbles 7 to 31 of 32).
const lioNAANibbles = 25

// LIONAA returns the NAA 6 designator LIO emits in VPD page 0x83 for a
// storage object with wwn/company_id companyID and wwn/vpd_unit_serial
// serial, as target_core_spc.c's spc_gen_naa_6h_vendor_specific builds
// it: nibble 6, the 24-bit company id, then the first 25 characters of
// the serial that are hex digits (either case; every other character is
// skipped), zeroes when the serial has fewer.
func LIONAA(companyID uint32, serial string) []byte {
	b := make([]byte, 16)
	b[0] = 0x60 | byte(companyID>>20&0xf)
	b[1] = byte(companyID >> 12)
	b[2] = byte(companyID >> 4)
	b[3] = byte(companyID&0xf) << 4
	for i, v := range serialNibbles(serial, lioNAANibbles) {
		n := 7 + i // 1 NAA nibble, 6 company id nibbles
		b[n/2] |= v << (4 * (1 - n%2))
	}
	return b
}

// LIOWWID returns the WWID a Linux host sees for a LIO storage object
// with this company id and unit serial: "naa." and LIONAA in hex.
func LIOWWID(companyID uint32, serial string) string {
	return Designator{Type: TypeNAA, Value: LIONAA(companyID, serial)}.ID()
}

// lioT10 returns LIO's T10 vendor ID designator for a storage object with
// this wwn/: the vendor padded to 8 bytes with spaces, then
// "product:serial" and a NUL. False when the vendor or product is LIO's
// own, which depends on the backstore.
func lioT10(w lio.WWN) (Designator, bool) {
	if w.VendorID == "" || w.ProductID == "" {
		return Designator{}, false
	}
	v := []byte(w.VendorID + "        ")[:8]
	v = append(v, w.ProductID+":"+w.UnitSerial+"\x00"...)
	return Designator{CodeSet: CodeSetASCII, Type: TypeT10VendorID, Value: v}, true
}

// lioLUGroup is the logical unit group designator of a storage object in
// LIO's default_lu_gp (id 0), where every storage object starts.
var lioLUGroup = Designator{CodeSet: CodeSetBinary, Type: TypeLogicalUnitGroup, Value: HexBytes{0, 0, 0, 0}}

// serialNibbles returns the values of the first n hex digits of s,
// skipping other characters as LIO's hex_to_bin loop does.
func serialNibbles(s string, n int) []byte {
	var out []byte
	for _, c := range []byte(s) {
		if len(out) == n {
			break
		}
		switch {
		case c >= '0' && c <= '9':
			out = append(out, c-'0')
		case c >= 'a' && c <= 'f':
			out = append(out, c-'a'+10)
		case c >= 'A' && c <= 'F':
			out = append(out, c-'A'+10)
		}
	}
	return out
}

// naaVendorNibbles returns nibbles 7 to 31 of a 16-byte NAA 6 designator,
// the part LIO fills from the unit serial.
func naaVendorNibbles(v []byte) []byte {
	out := make([]byte, 0, lioNAANibbles)
	for n := 7; n < 32; n++ {
		out = append(out, v[n/2]>>(4*(1-n%2))&0xf)
	}
	return out
}
