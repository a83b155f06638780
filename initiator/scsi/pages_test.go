package scsi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseInquiry(t *testing.T) {
	// LIO's standard INQUIRY (spc_emulate_inquiry_std): disk, SPC-4,
	// response data format 2, additional length 91, byte 5 TPGS 1 and
	// 3PC, CmdQue; vendor, product and revision space padded.
	b := inquiryData(0x18, "LIO-ORG", "IBLOCK", "4.0")
	inq, err := parseInquiry(b)
	require.NoError(t, err)
	assert.Equal(t, Inquiry{DeviceType: DeviceTypeDisk, Version: 6, Vendor: "LIO-ORG", Product: "IBLOCK", Revision: "4.0", TPGS: 1, ThirdPartyCopy: true}, inq)

	// PROTECT, MULTIP, TPGS 3, a NUL-padded product, no LU connected.
	b = inquiryData(0x31, "ACME", "", "1")
	copy(b[16:32], "vol\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	b[0], b[6] = 0x20, 0x10
	inq, err = parseInquiry(b[:36])
	require.NoError(t, err)
	assert.Equal(t, Inquiry{PeripheralQualifier: 1, Version: 6, Vendor: "ACME", Product: "vol", Revision: "1", TPGS: 3, Protect: true, MultiPort: true}, inq)

	_, err = parseInquiry(b[:35])
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestInquiryCDB(t *testing.T) {
	assert.Equal(t, []byte{0x12, 0, 0, 0, 96, 0}, inquiryCDB(false, 0, 96))
	assert.Equal(t, []byte{0x12, 1, 0x83, 0x01, 0x04, 0}, inquiryCDB(true, 0x83, 260))
}

func TestParseBlockLimits(t *testing.T) {
	// LIO with emulate_tpu=1 (page length 0x3c): WSNZ, compare and write
	// 1, granularity 1, max transfer 8192, optimal 8192, max unmap LBA
	// count 8192, 1 descriptor, unmap granularity 8, alignment 0, write
	// same 0xffff.
	p := page(0xb0, []byte{
		0x01, 0x01, 0x00, 0x01, // WSNZ; max compare and write; optimal granularity
		0x00, 0x00, 0x20, 0x00, // max transfer length
		0x00, 0x00, 0x20, 0x00, // optimal transfer length
		0x00, 0x00, 0x00, 0x00, // max prefetch length
		0x00, 0x00, 0x20, 0x00, // max unmap LBA count
		0x00, 0x00, 0x00, 0x01, // max unmap block descriptor count
		0x00, 0x00, 0x00, 0x08, // optimal unmap granularity
		0x80, 0x00, 0x00, 0x04, // UGAVALID, alignment 4
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, // max write same length
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // atomic and later fields
	})
	require.Equal(t, 0x3c, len(p)-4)
	payload, err := vpdPayload(p, 0xb0)
	require.NoError(t, err)
	l, err := parseBlockLimits(payload)
	require.NoError(t, err)
	assert.Equal(t, BlockLimits{WSNZ: true, MaxCompareAndWrite: 1, OptimalGranularity: 1, MaxTransferLength: 8192, OptimalTransferLength: 8192,
		MaxUnmapLBACount: 8192, MaxUnmapDescriptors: 1, OptimalUnmapGranularity: 8, UnmapAlignmentValid: true, UnmapAlignment: 4, MaxWriteSameLength: 0xffff}, l)

	// LIO without thin provisioning: page length 0x10, nothing after the
	// prefetch length.
	l, err = parseBlockLimits(payload[:0x10])
	require.NoError(t, err)
	assert.Equal(t, BlockLimits{WSNZ: true, MaxCompareAndWrite: 1, OptimalGranularity: 1, MaxTransferLength: 8192, OptimalTransferLength: 8192}, l)

	_, err = parseBlockLimits(payload[:11])
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestParseProvisioning(t *testing.T) {
	// LIO with emulate_tpu=1, emulate_tpws=1 and unmap_zeroes_data:
	// page length 4, LBPU, LBPWS, LBPWS10, LBPRZ 1.
	v, err := parseProvisioning([]byte{0x00, 0xe4, 0x00, 0x00})
	require.NoError(t, err)
	assert.Equal(t, Provisioning{LBPU: true, LBPWS: true, LBPWS10: true, LBPRZ: 1}, v)
	// An array reporting thin provisioning, threshold exponent 12, ANC_SUP
	// and DP.
	v, err = parseProvisioning([]byte{0x0c, 0x83, 0x02, 0x00})
	require.NoError(t, err)
	assert.Equal(t, Provisioning{ThresholdExponent: 12, LBPU: true, ANCSup: true, DP: true, Type: 2}, v)
	_, err = parseProvisioning([]byte{0})
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestParseCapacity16(t *testing.T) {
	// 512e: 512-byte logical blocks, 8 per physical block, lowest aligned
	// LBA 7 (an old partition offset), thin with LBPRZ, protection type 2.
	c, err := parseCapacity16(capacity16(0x1_0000_0000-1, 512, 0x03, 0x03, 0xc0, 0x07))
	require.NoError(t, err)
	assert.Equal(t, Capacity{LastLBA: 0xffffffff, LogicalBlockSize: 512, ProtectionType: 1, ProtectionEnabled: true,
		PhysicalBlockExponent: 3, LBPME: true, LBPRZ: true, LowestAlignedLBA: 7}, c)
	assert.Equal(t, uint64(2<<40), c.Bytes())
	assert.Equal(t, uint32(4096), c.PhysicalBlockSize())

	c, err = parseCapacity16(capacity16(262143, 4096, 0, 0, 0x3f, 0xff))
	require.NoError(t, err)
	assert.Equal(t, uint64(1<<30), c.Bytes())
	assert.Equal(t, uint32(4096), c.PhysicalBlockSize())
	assert.Equal(t, uint16(0x3fff), c.LowestAlignedLBA)

	_, err = parseCapacity16(make([]byte, 15))
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = parseCapacity16(make([]byte, 32))
	assert.ErrorIs(t, err, ErrMalformed, "block length 0")
	assert.Equal(t, []byte{0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, readCapacity16CDB())
}

func TestParsePersistentReserveIn(t *testing.T) {
	// READ KEYS: generation 5, additional length 16, two keys.
	keys := []byte{0, 0, 0, 5, 0, 0, 0, 16, 0, 0, 0, 0, 0x12, 0x34, 0xab, 0xcd, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1}
	r, err := parseReadKeys(keys)
	require.NoError(t, err)
	assert.Equal(t, Reservations{Generation: 5, Keys: []uint64{0x1234abcd, 0xdeadbeef00000001}}, r)
	r, err = parseReadKeys(keys[:16])
	require.NoError(t, err)
	assert.Equal(t, []uint64{0x1234abcd}, r.Keys, "keys past the data that arrived are left out")
	r, err = parseReadKeys([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	require.NoError(t, err)
	assert.Equal(t, Reservations{}, r)
	_, err = parseReadKeys([]byte{0, 0, 0, 0})
	assert.ErrorIs(t, err, ErrMalformed)

	// READ RESERVATION: generation 5, additional length 16, key, scope 0,
	// type 1 (Write Exclusive), as LIO's core_scsi3_pri_read_reservation.
	res := []byte{0, 0, 0, 5, 0, 0, 0, 16, 0, 0, 0, 0, 0x12, 0x34, 0xab, 0xcd, 0, 0, 0, 0, 0, 0x01, 0, 0}
	got, err := parseReadReservation(res)
	require.NoError(t, err)
	assert.Equal(t, &Reservation{Key: 0x1234abcd, Type: 1}, got)
	assert.Equal(t, "Write Exclusive", got.Type.String())
	_, err = parseReadReservation(res[:20])
	assert.ErrorIs(t, err, ErrMalformed, "a reservation announced but cut off")
	got, err = parseReadReservation([]byte{0, 0, 0, 5, 0, 0, 0, 0})
	require.NoError(t, err)
	assert.Nil(t, got)
	assert.Equal(t, []byte{0x5e, 0x01, 0, 0, 0, 0, 0, 0x01, 0x08, 0}, prInCDB(prReadReservation, 264))
	assert.Equal(t, "Exclusive Access - All Registrants", ReservationType(8).String())
}
