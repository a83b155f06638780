package scsi

import (
	"fmt"
	"strings"
)

// HostWWID returns the identifier a Linux host derives from these
// designators, as the kernel's scsi_vpd_lun_id (drivers/scsi/scsi_lib.c)
// does for /sys/block/sdX/device/wwid. Only logical-unit designators
// count, by preference: SCSI name string, NAA 6, 16-byte EUI-64, 12-byte
// EUI-64, NAA 5, NAA 4 (which the kernel takes for IEEE Extended; NAA 2,
// the real one, it ignores), 8-byte EUI-64, then NAA 3 and T10 vendor
// ID. Among equals the later one wins, except that a T10 vendor ID or
// SCSI name string shorter than the one chosen does not. A designator of
// a preferred kind but a length the kernel cannot print (an NAA of
// neither 8 nor 16 bytes) outranks the ones after it without replacing
// the one before, as in the kernel. A SCSI name string is returned
// without the NULs that pad it (sysfs shows them). Empty when none
// qualifies.
func HostWWID(ds []Designator) string {
	d, ok := hostDesignator(ds)
	if !ok {
		return ""
	}
	return d.ID()
}

// hostDesignator returns the designator scsi_vpd_lun_id prints, and
// false when there is none.
func hostDesignator(ds []Designator) (Designator, bool) {
	var prio, size int
	var chosen Designator
	found := false
	for _, d := range ds {
		p := wwidPriority(d)
		if p == 0 || prio > p {
			continue
		}
		n := len(d.Value)
		if (d.Type == TypeT10VendorID || d.Type == TypeSCSIName) && size > n {
			continue
		}
		prio, size = p, n
		// The kernel raises the bar even for an NAA or EUI-64 of a length
		// it cannot print, but keeps the identifier it had.
		if d.Type == TypeT10VendorID || d.Type == TypeSCSIName || n == 8 || n == 16 || d.Type == TypeEUI64 && n == 12 {
			chosen, found = d, true
		}
	}
	return chosen, found
}

// wwidPriority is the kernel's designator_prio: 0 for designators that
// do not name the logical unit or that it never uses.
func wwidPriority(d Designator) int {
	if d.Association != AssocLogicalUnit || len(d.Value) == 0 {
		return 0
	}
	switch d.Type {
	case TypeSCSIName:
		return 9
	case TypeNAA:
		return map[uint8]int{NAAIEEERegisteredExtended: 8, NAAIEEERegistered: 5, 4: 4, NAALocallyAssigned: 1}[d.NAA()]
	case TypeEUI64:
		return map[int]int{16: 7, 12: 6, 8: 3}[len(d.Value)]
	case TypeT10VendorID:
		return 1
	}
	return 0
}

// kernelEscape prints bytes as the kernel's %pE does (ESCAPE_ANY_NP):
// printable characters as they are, \n \r \t \v \f \a \e and \0 by name,
// anything else in octal.
func kernelEscape(b []byte) string {
	var s strings.Builder
	named := map[byte]string{'\n': `\n`, '\r': `\r`, '\t': `\t`, '\v': `\v`, '\f': `\f`, '\a': `\a`, 0x1b: `\e`, 0: `\0`}
	for _, c := range b {
		switch {
		case c >= 0x20 && c < 0x7f || c >= 0xa0:
			s.WriteByte(c)
		case named[c] != "":
			s.WriteString(named[c])
		default:
			fmt.Fprintf(&s, `\%03o`, c)
		}
	}
	return s.String()
}
