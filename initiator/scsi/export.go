package scsi

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/lunferry/lunferry/lio"
)

// Export is what a LIO storage object needs to show a host a logical
// unit's identity: its wwn/ settings and attrib/ (block size, thin
// provisioning).
type Export struct {
	// WWN is the storage object's SCSI identity (wwn/). Empty vendor,
	// product and revision keep LIO's own; CompanyID 0 keeps LIO's
	// 00-14-05.
	WWN lio.WWN
	// BlockSize is attrib/block_size, the logical block size; 0 keeps
	// the backing device's.
	BlockSize uint32
	// PhysicalBlockSize is the old LUN's. LIO has no attribute for it:
	// its iblock backend reports the backing device's physical/logical
	// block ratio (and fileio none), so the backing device must have it.
	PhysicalBlockSize uint32
	// EmulateTPU and EmulateTPWS are attrib/emulate_tpu and emulate_tpws:
	// the export is thin provisioned (LBPME) and takes UNMAP, WRITE SAME
	// with UNMAP (set by OverNewLUN).
	EmulateTPU, EmulateTPWS bool `json:",omitempty"`
}

// Verdict says what a host sees through an Export compared with the old
// logical unit.
type Verdict struct {
	// Exact: the host's WWID through the export is the old LUN's.
	Exact bool
	// Family is the family of the old LUN's designator that the host
	// keys on; empty when it has none.
	Family Family
	// OldWWID is the host's WWID of the old LUN (HostWWID); NewWWID the
	// one it sees through the export.
	OldWWID, NewWWID string
	// Reason says why the old WWID cannot be shown; empty when Exact.
	Reason string
	// Handler is the device handler ("emc", "hp_sw", "rdac") the old
	// INQUIRY strings would make a host bind; when set, the export keeps
	// LIO's own vendor and product.
	Handler string
	// Notes are the other differences a host can see, one sentence each.
	Notes []string
}

// ForLIO computes the Export that shows a host the identity id, and says
// how close it comes. When the old WWID cannot be reproduced, the export
// gets a new identity: a unit serial derived from seed (e.g. the volume's
// name) and the old WWID, the same on every call, under LIO's company id.
func ForLIO(id Identity, seed string) (Export, Verdict) {
	v := Verdict{OldWWID: id.WWID()}
	e := Export{PhysicalBlockSize: id.Capacity.PhysicalBlockSize()}
	d, found := hostDesignator(id.Designators)
	ok, reason := false, "the old LUN has no designator a host keys on"
	if found {
		v.Family = d.Family()
		ok, reason = Reproducible(d)
		reason = fmt.Sprintf("the host keys on %s (%s): %s", v.OldWWID, v.Family, reason)
	}
	if ok {
		var kept bool
		e.WWN.CompanyID, e.WWN.UnitSerial, kept = reproduceNAA(d, id.UnitSerial)
		if !kept && id.UnitSerial != "" {
			v.Notes = append(v.Notes, fmt.Sprintf("VPD page 0x80 (unit serial) reads %q instead of %q: LIO builds its NAA designator from the unit serial", e.WWN.UnitSerial, id.UnitSerial))
		}
	} else {
		v.Reason = reason
		e.WWN.UnitSerial = derivedSerial(seed, v.OldWWID)
	}
	companyID := e.WWN.CompanyID
	if companyID == 0 {
		companyID = lioDefaultCompanyID
	}
	naa := LIONAA(companyID, e.WWN.UnitSerial)
	v.NewWWID = Designator{Type: TypeNAA, Value: naa}.ID()
	v.Exact = v.OldWWID != "" && v.NewWWID == v.OldWWID
	v.Handler = inquirySettings(&e.WWN, id.Inquiry, &v.Notes)
	e.BlockSize = blockSettings(id.Capacity, id.Inquiry, &v.Notes)
	v.Notes = append(v.Notes, lostDesignators(id.Designators, e.WWN, naa, d, v.Exact)...)
	return e, v
}

// inquirySettings copies the old INQUIRY vendor, product and revision
// into w where LIO can show them, and returns the device handler they
// would bind (then LIO's own strings stay).
func inquirySettings(w *lio.WWN, inq Inquiry, notes *[]string) string {
	if h := DeviceHandler(inq.Vendor, inq.Product); h != "" {
		*notes = append(*notes, fmt.Sprintf("INQUIRY vendor, product and revision are LIO's own: %q %q would make a host bind the %s device handler, which the proxy cannot serve", inq.Vendor, inq.Product, h))
		return h
	}
	for _, f := range []struct {
		name, v string
		max     int
		to      *string
	}{{"vendor", inq.Vendor, 8, &w.VendorID}, {"product", inq.Product, 16, &w.ProductID}, {"revision", inq.Revision, 4, &w.Revision}} {
		if lioAccepts(f.v, f.max) {
			*f.to = f.v
		} else {
			*notes = append(*notes, fmt.Sprintf("INQUIRY %s is LIO's own: LIO cannot show %q (empty, white space at an end or not printable ASCII)", f.name, f.v))
		}
	}
	return ""
}

// blockSettings returns attrib/block_size for the old logical block size
// and notes what LIO cannot carry of the block geometry.
func blockSettings(c Capacity, inq Inquiry, notes *[]string) uint32 {
	var size uint32
	switch c.LogicalBlockSize {
	case 512, 1024, 2048, 4096:
		size = c.LogicalBlockSize
	default:
		*notes = append(*notes, fmt.Sprintf("logical block size %d: LIO supports 512, 1024, 2048 and 4096 only", c.LogicalBlockSize))
	}
	if c.LowestAlignedLBA != 0 {
		*notes = append(*notes, fmt.Sprintf("lowest aligned LBA %d: LIO reports the backing device's alignment instead", c.LowestAlignedLBA))
	}
	if c.ProtectionEnabled || inq.Protect {
		*notes = append(*notes, "T10 protection information is not carried")
	}
	return size
}

// lostDesignators notes the old LUN's logical-unit designators that the
// export will not show: those not among LIO's for w (NAA 6 naa, T10
// vendor ID, logical unit group 0). The designator the host keys on is
// left out when it is not reproduced: the Verdict's Reason says so.
func lostDesignators(ds []Designator, w lio.WWN, naa []byte, host Designator, exact bool) []string {
	shown := []Designator{{CodeSet: CodeSetBinary, Type: TypeNAA, Value: naa}, lioLUGroup}
	if t10, ok := lioT10(w); ok {
		shown = append(shown, t10)
	}
	var notes []string
	for _, d := range ds {
		if d.Association != AssocLogicalUnit || !exact && sameDesignator(d, host) {
			continue
		}
		if !slices.ContainsFunc(shown, func(s Designator) bool { return sameDesignator(s, d) }) {
			notes = append(notes, fmt.Sprintf("designator %s is not carried: LIO shows the logical unit only by its NAA 6, a T10 vendor ID of vendor, product and unit serial, and logical unit group 0", d))
		}
	}
	return notes
}

// sameDesignator compares type, association and value.
func sameDesignator(a, b Designator) bool {
	return a.Type == b.Type && a.Association == b.Association && bytes.Equal(a.Value, b.Value)
}

// derivedSerial returns a unit serial for a new identity: SHA-256 of seed
// and the old WWID, shaped as the UUIDs rtslib gives storage objects.
func derivedSerial(seed, oldWWID string) string {
	h := sha256.Sum256([]byte("lunferry\x00" + seed + "\x00" + oldWWID))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
