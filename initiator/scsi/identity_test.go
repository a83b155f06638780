package scsi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadFromNetApp(t *testing.T) {
	lu := netApp.lu()
	id, err := ReadFrom(lu)
	require.NoError(t, err)
	assert.Equal(t, Inquiry{Version: 6, Vendor: "NETAPP", Product: "LUN C-Mode", Revision: "9141", TPGS: 1}, id.Inquiry)
	assert.Equal(t, HexBytes{0x00, 0x80, 0x83}, id.Pages)
	assert.Equal(t, "80Hqh?Bvx0Rk", id.UnitSerial)
	require.Len(t, id.Designators, 4)
	assert.Equal(t, "naa.600a098038304871683f42767830526b", id.WWID())
	assert.Nil(t, id.BlockLimits, "page 0xb0 is not listed")
	assert.Nil(t, id.Provisioning)
	assert.Equal(t, uint32(512), id.Capacity.LogicalBlockSize)
	assert.Equal(t, uint32(4096), id.Capacity.PhysicalBlockSize())
	for _, cdb := range lu.cdbs {
		assert.False(t, cdb[0] == opInquiry && (cdb[2] == 0xb0 || cdb[2] == 0xb2), "unlisted page asked for: % x", cdb)
	}

	// What the state records reads back the same.
	b, err := json.Marshal(id)
	require.NoError(t, err)
	var back Identity
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, id, back)
}

func TestReadFromOptionalPages(t *testing.T) {
	lu := netApp.lu()
	delete(lu.pages, 0x00) // no list: every page is tried
	delete(lu.pages, 0x80)
	lu.pages[0xb2] = page(0xb2, []byte{0x00, 0x80, 0x02, 0x00})
	id, err := ReadFrom(lu)
	require.NoError(t, err)
	assert.Nil(t, id.Pages)
	assert.Empty(t, id.UnitSerial)
	assert.Nil(t, id.BlockLimits)
	assert.Equal(t, &Provisioning{LBPU: true, Type: 2}, id.Provisioning)
}

func TestReadFromRequiredPages(t *testing.T) {
	lu := netApp.lu()
	delete(lu.pages, 0x83)
	_, err := ReadFrom(lu)
	assert.ErrorIs(t, err, ErrIllegalRequest, "page 0x83 is required")

	lu = netApp.lu()
	lu.capacity = nil
	_, err = ReadFrom(lu)
	assert.ErrorIs(t, err, ErrIllegalRequest, "READ CAPACITY(16) is required")
	assert.Contains(t, err.Error(), "READ CAPACITY(16): check condition: ILLEGAL REQUEST, invalid command operation code (20/00)")

	lu = netApp.lu()
	lu.inquiry = lu.inquiry[:20]
	_, err = ReadFrom(lu)
	assert.ErrorIs(t, err, ErrMalformed)

	lu = netApp.lu()
	lu.fail = &StatusError{Op: opInquiry, Host: 0x0f}
	_, err = ReadFrom(lu)
	var se *StatusError
	assert.ErrorAs(t, err, &se)
}

// transportFailsOn fails one VPD page with a transport error.
type transportFailsOn struct {
	*fakeLU
	page byte
}

func (f transportFailsOn) DataIn(cdb, buf []byte) (int, error) {
	if cdb[0] == opInquiry && cdb[1] == 1 && cdb[2] == f.page {
		return 0, &StatusError{Op: cdb[0], Host: 0x0e}
	}
	return f.fakeLU.DataIn(cdb, buf)
}

func TestReadFromOptionalPageTransportFailure(t *testing.T) {
	lu := netApp.lu()
	lu.pages[0x00] = page(0x00, []byte{0x00, 0x80, 0x83, 0xb0})
	_, err := ReadFrom(transportFailsOn{lu, 0xb0})
	var se *StatusError
	require.ErrorAs(t, err, &se, "only ILLEGAL REQUEST means absent")
	assert.Contains(t, err.Error(), "DID_TRANSPORT_DISRUPTED")
}

func TestReadVPDLongPage(t *testing.T) {
	// 20 NAA 6 designators: 400 bytes, more than the first 255-byte ask.
	var payload []byte
	for i := range 20 {
		payload = append(payload, 0x01, 0x03, 0x00, 0x10, 0x60, 0x01, 0x40, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i))
	}
	lu := netApp.lu()
	lu.pages[0x83] = page(0x83, payload)
	ds, err := readDeviceID(lu)
	require.NoError(t, err)
	assert.Len(t, ds, 20)
	require.Len(t, lu.cdbs, 2)
	assert.Equal(t, inquiryCDB(true, 0x83, 255), lu.cdbs[0])
	assert.Equal(t, inquiryCDB(true, 0x83, 404), lu.cdbs[1])
}

func TestReadVPDWrongPage(t *testing.T) {
	lu := netApp.lu()
	lu.pages[0x80] = page(0x83, []byte("x"))
	_, err := readUnitSerial(lu)
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestUnitAttentionIsRetried(t *testing.T) {
	lu := netApp.lu()
	lu.unitAttentions = 3
	inq, err := readInquiry(lu)
	require.NoError(t, err)
	assert.Equal(t, "NETAPP", inq.Vendor)
	assert.Len(t, lu.cdbs, 4)

	lu = netApp.lu()
	lu.unitAttentions = 4
	_, err = readInquiry(lu)
	assert.ErrorIs(t, err, ErrUnitAttention)
}

func TestReadReservations(t *testing.T) {
	lu := netApp.lu()
	// 40 registrations: more than the 32 keys the first ask has room for.
	keys := []byte{0, 0, 0, 9, 0, 0, 0x01, 0x40}
	for i := range 40 {
		keys = append(keys, 0, 0, 0, 0, 0, 0, 0xab, byte(i))
	}
	lu.keys = keys
	lu.resv = []byte{0, 0, 0, 9, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, 0, 0}
	r, err := readReservations(lu)
	require.NoError(t, err)
	assert.Equal(t, uint32(9), r.Generation)
	require.Len(t, r.Keys, 40)
	assert.Equal(t, uint64(0xab27), r.Keys[39])
	assert.Equal(t, &Reservation{Type: 7}, r.Reservation, "all registrants: key 0")
	assert.Equal(t, prInCDB(prReadKeys, 264), lu.cdbs[0])
	assert.Equal(t, prInCDB(prReadKeys, 328), lu.cdbs[1])

	lu = netApp.lu()
	_, err = readReservations(lu)
	assert.ErrorIs(t, err, ErrIllegalRequest, "no PR support")
}

func TestReadFromGoldenArrays(t *testing.T) {
	for _, a := range []goldenArray{netApp, pure, unity, powerMax, threePar, ibmSVC, ibmDS4700, hitachi, lioArray, xtremIO, nimble, scstEUI, tgtT10} {
		id, err := ReadFrom(a.lu())
		require.NoError(t, err, a.name)
		assert.Equal(t, a.serial, id.UnitSerial, a.name)
		assert.NotEmpty(t, id.WWID(), a.name)
	}
}
