package scsi

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Golden GET LBA STATUS CDB, byte by byte from SBC-3 5.6 (the layout
// sg_get_lba_status sends).
func TestGetLBAStatusCDB(t *testing.T) {
	assert.Equal(t, []byte{0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0x00, 0x00, 0x40, 0x08, 0x00, 0x00}, getLBAStatusCDB(0x102, 16392))
	assert.Equal(t, []byte{0x9e, 0x12, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0, 0, 0, 0x18, 0, 0}, getLBAStatusCDB(0x0102030405060708, 24))
}

// lbaData builds GET LBA STATUS parameter data from descriptors, as a
// device does: the parameter data length counts every descriptor, what
// arrives is cut to alloc bytes.
func lbaData(alloc uint32, ds ...LBAExtent) []byte {
	b := make([]byte, lbaHeaderLen, lbaHeaderLen+lbaDescLen*len(ds))
	for _, d := range ds {
		desc := make([]byte, lbaDescLen)
		binary.BigEndian.PutUint64(desc[0:8], d.LBA)
		binary.BigEndian.PutUint32(desc[8:12], d.Blocks)
		desc[12] = byte(d.Status)
		b = append(b, desc...)
	}
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-4))
	return b[:min(len(b), int(alloc))]
}

func TestParseLBAStatus(t *testing.T) {
	// tgt's answer for a 64 MiB file with 256 KiB written at 6.25 MiB:
	// header 8+32-4 = 36, two descriptors.
	b := []byte{
		0, 0, 0, 0x24, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x32, 0x00, 0x01, 0, 0, 0, // LBA 0, 12800 blocks, deallocated
		0, 0, 0, 0, 0, 0, 0x32, 0x00, 0, 0, 0x02, 0x00, 0x00, 0, 0, 0, // LBA 12800, 512 blocks, mapped
	}
	ds, err := parseLBAStatus(b)
	require.NoError(t, err)
	assert.Equal(t, []LBAExtent{{LBA: 0, Blocks: 12800, Status: Deallocated}, {LBA: 12800, Blocks: 512, Status: Mapped}}, ds)

	// Cut after the first descriptor: the second is left out.
	ds, err = parseLBAStatus(b[:30])
	require.NoError(t, err)
	assert.Len(t, ds, 1)

	_, err = parseLBAStatus(b[:7])
	assert.ErrorIs(t, err, ErrMalformed)
	assert.True(t, Anchored.Unmapped())
	assert.True(t, Deallocated.Unmapped())
	assert.False(t, Mapped.Unmapped())
	assert.False(t, MappedOrUnknown.Unmapped())
}

// thinLU is a logical unit of 1000 blocks whose extents answer GET LBA
// STATUS from any LBA (the first descriptor starts there), at most per
// descriptors per answer.
func thinLU(per int, ds ...LBAExtent) *fakeLU {
	return &fakeLU{
		capacity: capacity16(999, 512, 0, 0, 0xc0, 0),
		lbaStatus: func(lba uint64, alloc uint32) []byte {
			var out []LBAExtent
			for _, d := range ds {
				if d.End() <= lba {
					continue
				}
				if d.LBA < lba {
					d.Blocks -= uint32(lba - d.LBA)
					d.LBA = lba
				}
				out = append(out, d)
			}
			return lbaData(min(alloc, uint32(lbaHeaderLen+per*lbaDescLen)), out...)
		},
	}
}

func TestReadLBAMap(t *testing.T) {
	exts := []LBAExtent{{0, 100, Deallocated}, {100, 50, Mapped}, {150, 50, Anchored}, {200, 800, Deallocated}}
	// One descriptor per answer: four commands, each from where the
	// last one ended; adjacent extents of one status are merged.
	lu := thinLU(1, exts...)
	m, err := ReadLBAMapFrom(lu)
	require.NoError(t, err)
	assert.True(t, m.Capacity.LBPME)
	assert.True(t, m.Capacity.LBPRZ)
	assert.Equal(t, exts, m.Extents)
	assert.Len(t, lu.cdbs, 5) // READ CAPACITY(16), then four
	assert.Equal(t, uint64(150), binary.BigEndian.Uint64(lu.cdbs[3][2:10]))

	// A device that lists the whole LU at once: one command.
	lu = thinLU(1024, append(exts, LBAExtent{1000, 5, Mapped})...)
	m, err = ReadLBAMapFrom(lu)
	require.NoError(t, err)
	assert.Equal(t, exts, m.Extents, "what lies past the last LBA is left out")
	assert.Len(t, lu.cdbs, 2)

	// Same status split over descriptors: merged.
	m, err = ReadLBAMapFrom(thinLU(2, LBAExtent{0, 500, Deallocated}, LBAExtent{500, 500, Deallocated}))
	require.NoError(t, err)
	assert.Equal(t, []LBAExtent{{0, 1000, Deallocated}}, m.Extents)
}

func TestReadLBAMapRefusesBadAnswers(t *testing.T) {
	// A gap between descriptors.
	_, err := ReadLBAMapFrom(thinLU(4, LBAExtent{0, 100, Deallocated}, LBAExtent{200, 800, Mapped}))
	assert.ErrorIs(t, err, ErrMalformed)

	// An answer that does not start where it was asked.
	lu := thinLU(4)
	lu.lbaStatus = func(uint64, uint32) []byte { return lbaData(1024, LBAExtent{0, 10, Mapped}) }
	_, err = ReadLBAMapFrom(lu)
	assert.ErrorIs(t, err, ErrMalformed, "stuck at LBA 10")

	// No descriptor at all.
	lu.lbaStatus = func(uint64, uint32) []byte { return lbaData(1024) }
	_, err = ReadLBAMapFrom(lu)
	assert.ErrorIs(t, err, ErrMalformed)

	// A device without GET LBA STATUS: ILLEGAL REQUEST, as it said.
	lu = thinLU(4)
	lu.lbaStatus = nil
	_, err = ReadLBAMapFrom(lu)
	assert.ErrorIs(t, err, ErrIllegalRequest)
}

func TestReadLBAMapFullyProvisioned(t *testing.T) {
	lu := &fakeLU{capacity: capacity16(999, 512, 0, 0, 0, 0)}
	m, err := ReadLBAMapFrom(lu)
	require.NoError(t, err)
	assert.Empty(t, m.Extents)
	assert.Len(t, lu.cdbs, 1, "no GET LBA STATUS without LBPME")
}
