package scsi

import (
	"encoding/binary"
	"fmt"
)

// ProvisioningStatus is an LBA status descriptor's provisioning status
// (SBC-4 table 63, byte 12 bits 3-0).
type ProvisioningStatus uint8

// The provisioning statuses. Deallocated and anchored blocks are
// unmapped: with LBPRZ they read as zeroes.
const (
	Mapped      ProvisioningStatus = 0 // mapped, or unknown
	Deallocated ProvisioningStatus = 1
	Anchored    ProvisioningStatus = 2
	// MappedOrUnknown is SBC-4's code for mapped or unknown beside 0
	// (a device that cannot tell).
	MappedOrUnknown ProvisioningStatus = 3
)

// Unmapped reports whether blocks of status s are known to hold no data
// (deallocated or anchored).
func (s ProvisioningStatus) Unmapped() bool { return s == Deallocated || s == Anchored }

// String names s as SBC-4 does.
func (s ProvisioningStatus) String() string {
	switch s {
	case Mapped:
		return "mapped"
	case Deallocated:
		return "deallocated"
	case Anchored:
		return "anchored"
	case MappedOrUnknown:
		return "mapped or unknown"
	}
	return fmt.Sprintf("status %d", uint8(s))
}

// LBAExtent is one LBA status descriptor: Blocks logical blocks from LBA
// in one provisioning status.
type LBAExtent struct {
	LBA    uint64             `json:"lba"`
	Blocks uint32             `json:"blocks"`
	Status ProvisioningStatus `json:"status"`
}

// End is the first LBA after e.
func (e LBAExtent) End() uint64 { return e.LBA + uint64(e.Blocks) }

// GET LBA STATUS: SERVICE ACTION IN(16) with service action 12h.
const (
	saGetLBAStatus = 0x12
	lbaHeaderLen   = 8
	lbaDescLen     = 16
	// lbaAlloc asks for up to 1024 descriptors per command.
	lbaAlloc = lbaHeaderLen + 1024*lbaDescLen
)

// getLBAStatusCDB builds GET LBA STATUS (SBC-3 5.6): the starting LBA in
// bytes 2-9, the allocation length in bytes 10-13, report type 0 (all
// descriptors) in byte 14.
func getLBAStatusCDB(lba uint64, alloc uint32) []byte {
	cdb := make([]byte, 16)
	cdb[0], cdb[1] = opServiceActionIn16, saGetLBAStatus
	binary.BigEndian.PutUint64(cdb[2:10], lba)
	binary.BigEndian.PutUint32(cdb[10:14], alloc)
	return cdb
}

// parseLBAStatus decodes GET LBA STATUS parameter data: the parameter
// data length in bytes 0-3 (what follows it), 4 reserved bytes, then one
// 16-byte descriptor per extent (LBA in bytes 0-7, number of blocks in
// 8-11, provisioning status in byte 12 bits 3-0). Descriptors cut off by
// the allocation length are left out.
func parseLBAStatus(b []byte) ([]LBAExtent, error) {
	if len(b) < lbaHeaderLen {
		return nil, fmt.Errorf("%w: GET LBA STATUS data of %d bytes", ErrMalformed, len(b))
	}
	n := 4 + int(binary.BigEndian.Uint32(b[0:4]))
	if n < lbaHeaderLen {
		return nil, fmt.Errorf("%w: GET LBA STATUS parameter data length %d", ErrMalformed, n-4)
	}
	var out []LBAExtent
	for off := lbaHeaderLen; off+lbaDescLen <= min(n, len(b)); off += lbaDescLen {
		d := b[off : off+lbaDescLen]
		out = append(out, LBAExtent{
			LBA:    binary.BigEndian.Uint64(d[0:8]),
			Blocks: binary.BigEndian.Uint32(d[8:12]),
			Status: ProvisioningStatus(d[12] & 0xf),
		})
	}
	return out, nil
}

// maxLBACommands bounds the commands one map takes: a device whose
// answers do not move forward is an error, not a loop.
const maxLBACommands = 1 << 20

// readLBAMap sends GET LBA STATUS from LBA 0 to lastLBA and returns
// the extents in order, adjacent ones of the same status merged. Each
// answer starts at the LBA asked for (SBC-3: the first descriptor holds
// it); the next command asks from the end of the last descriptor that
// arrived, so a device whose answer was cut short by the allocation
// length is asked again where it stopped.
func readLBAMap(c Commander, lastLBA uint64) ([]LBAExtent, error) {
	var out []LBAExtent
	for lba, n := uint64(0), 0; lba <= lastLBA; n++ {
		if n == maxLBACommands {
			return nil, fmt.Errorf("%w: GET LBA STATUS: %d commands did not reach LBA %d", ErrMalformed, n, lastLBA)
		}
		b, err := dataIn(c, getLBAStatusCDB(lba, lbaAlloc), lbaAlloc)
		if err != nil {
			return nil, fmt.Errorf("GET LBA STATUS at LBA %d: %w", lba, err)
		}
		ds, err := parseLBAStatus(b)
		if err != nil {
			return nil, err
		}
		if len(ds) == 0 || ds[0].LBA > lba || ds[0].End() <= lba {
			return nil, fmt.Errorf("%w: GET LBA STATUS at LBA %d: the first descriptor does not hold it (%+v)", ErrMalformed, lba, first(ds))
		}
		for _, d := range ds {
			if d.End() <= lba || d.Blocks == 0 {
				continue // before where this answer is needed
			}
			if d.LBA > lba {
				return nil, fmt.Errorf("%w: GET LBA STATUS: a gap before LBA %d (descriptors must be contiguous)", ErrMalformed, d.LBA)
			}
			d.Blocks = uint32(min(d.End(), lastLBA+1) - lba)
			d.LBA = lba
			out = appendExtent(out, d)
			lba = d.End()
			if lba > lastLBA {
				break
			}
		}
	}
	return out, nil
}

func first(ds []LBAExtent) any {
	if len(ds) == 0 {
		return "none"
	}
	return ds[0]
}

// appendExtent appends d to out, merged into the last extent when it
// continues it in the same status (and the count fits).
func appendExtent(out []LBAExtent, d LBAExtent) []LBAExtent {
	if k := len(out) - 1; k >= 0 && out[k].Status == d.Status && out[k].End() == d.LBA && uint64(out[k].Blocks)+uint64(d.Blocks) <= 0xffffffff {
		out[k].Blocks += d.Blocks
		return out
	}
	return append(out, d)
}

// LBAMap is a logical unit's provisioning map as GET LBA STATUS reports
// it, with what READ CAPACITY(16) says of its unmapped blocks.
type LBAMap struct {
	// Capacity is READ CAPACITY(16) (LBPME, LBPRZ, block size).
	Capacity Capacity `json:"capacity"`
	// Extents cover LBA 0 to the last LBA, in order.
	Extents []LBAExtent `json:"extents"`
}

// ReadLBAMap opens the SCSI disk dev and reads its provisioning map. A
// logical unit that reports no logical block provisioning (LBPME 0) is
// not asked: its map is empty. One that refuses GET LBA STATUS is an
// error wrapping ErrIllegalRequest.
func ReadLBAMap(dev string) (LBAMap, error) {
	d, err := Open(dev)
	if err != nil {
		return LBAMap{}, err
	}
	defer d.Close()
	m, err := ReadLBAMapFrom(d)
	if err != nil {
		return LBAMap{}, fmt.Errorf("scsi: LBA status of %s: %w", dev, err)
	}
	return m, nil
}

// ReadLBAMapFrom is ReadLBAMap through any Commander.
func ReadLBAMapFrom(c Commander) (LBAMap, error) {
	capa, err := readCapacity16(c)
	if err != nil {
		return LBAMap{}, err
	}
	m := LBAMap{Capacity: capa}
	if !capa.LBPME {
		return m, nil
	}
	m.Extents, err = readLBAMap(c, capa.LastLBA)
	return m, err
}
