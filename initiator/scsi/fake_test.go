package scsi

import (
	"encoding/binary"
	"fmt"
)

// fakeLU answers the commands this package sends from golden responses,
// as a device would: a response longer than the allocation length is cut
// to it, an absent page is ILLEGAL REQUEST, invalid field in CDB.
type fakeLU struct {
	inquiry  []byte
	pages    map[byte][]byte // whole VPD pages, header included
	capacity []byte
	keys     []byte
	resv     []byte
	// lbaStatus answers GET LBA STATUS for a starting LBA and an
	// allocation length.
	lbaStatus func(lba uint64, alloc uint32) []byte
	// unitAttentions is how many commands meet a UNIT ATTENTION first.
	unitAttentions int
	// fail answers every command with this error when set.
	fail error
	// cdbs records every CDB sent.
	cdbs [][]byte
}

func illegalRequest(op byte, asc uint8) error {
	return &CheckConditionError{Op: op, Sense: Sense{Key: SenseIllegalRequest, ASC: asc}}
}

func (f *fakeLU) DataIn(cdb, buf []byte) (int, error) {
	f.cdbs = append(f.cdbs, append([]byte(nil), cdb...))
	if f.fail != nil {
		return 0, f.fail
	}
	if f.unitAttentions > 0 {
		f.unitAttentions--
		return 0, &CheckConditionError{Op: cdb[0], Sense: Sense{Key: SenseUnitAttention, ASC: 0x29}}
	}
	resp, err := f.response(cdb)
	if err != nil {
		return 0, err
	}
	return copy(buf, resp), nil
}

func (f *fakeLU) response(cdb []byte) ([]byte, error) {
	switch {
	case cdb[0] == opInquiry && cdb[1]&1 == 0:
		return f.inquiry, nil
	case cdb[0] == opInquiry:
		p, ok := f.pages[cdb[2]]
		if !ok {
			return nil, illegalRequest(cdb[0], 0x24)
		}
		return p, nil
	case cdb[0] == opServiceActionIn16 && cdb[1] == 0x10 && f.capacity != nil:
		return f.capacity, nil
	case cdb[0] == opServiceActionIn16 && cdb[1] == saGetLBAStatus && f.lbaStatus != nil:
		return f.lbaStatus(binary.BigEndian.Uint64(cdb[2:10]), binary.BigEndian.Uint32(cdb[10:14])), nil
	case cdb[0] == opPersistentReserveIn && cdb[1] == prReadKeys && f.keys != nil:
		return f.keys, nil
	case cdb[0] == opPersistentReserveIn && cdb[1] == prReadReservation && f.resv != nil:
		return f.resv, nil
	}
	return nil, illegalRequest(cdb[0], 0x20)
}

// page builds a VPD page: byte 0 peripheral device type (disk), byte 1
// the page code, bytes 2-3 the page length, then the payload.
func page(code byte, payload ...[]byte) []byte {
	var p []byte
	for _, b := range payload {
		p = append(p, b...)
	}
	return append([]byte{0x00, code, byte(len(p) >> 8), byte(len(p))}, p...)
}

// inquiryData builds 96 bytes of standard INQUIRY data for a disk: SPC-4
// (version 6), response data format 2, additional length 91, byte 5 as
// given, CmdQue, and the space-padded strings.
func inquiryData(b5 byte, vendor, product, revision string) []byte {
	b := make([]byte, 96)
	b[2], b[3], b[4], b[5], b[7] = 0x06, 0x02, 91, b5, 0x02
	copy(b[8:36], fmt.Sprintf("%-8s%-16s%-4s", vendor, product, revision))
	return b
}

// capacity16 builds READ CAPACITY(16) data.
func capacity16(lastLBA uint64, blockSize uint32, b12, b13, b14, b15 byte) []byte {
	b := make([]byte, 32)
	for i := 0; i < 8; i++ {
		b[i] = byte(lastLBA >> (56 - 8*i))
	}
	b[8], b[9], b[10], b[11] = byte(blockSize>>24), byte(blockSize>>16), byte(blockSize>>8), byte(blockSize)
	b[12], b[13], b[14], b[15] = b12, b13, b14, b15
	return b
}
