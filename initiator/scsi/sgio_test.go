package scsi

import (
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSgIOHdrLayoutMatchesC(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("offsets below are those of 64-bit Linux")
	}
	var h sgIOHdr
	assert.Equal(t, uintptr(88), unsafe.Sizeof(h))
	for name, got := range map[string][2]uintptr{
		"dxfer_len":     {unsafe.Offsetof(h.dxferLen), 12},
		"dxferp":        {unsafe.Offsetof(h.dxferp), 16},
		"cmdp":          {unsafe.Offsetof(h.cmdp), 24},
		"sbp":           {unsafe.Offsetof(h.sbp), 32},
		"timeout":       {unsafe.Offsetof(h.timeout), 40},
		"usr_ptr":       {unsafe.Offsetof(h.usrPtr), 56},
		"status":        {unsafe.Offsetof(h.status), 64},
		"sb_len_wr":     {unsafe.Offsetof(h.sbLenWr), 67},
		"host_status":   {unsafe.Offsetof(h.hostStatus), 68},
		"driver_status": {unsafe.Offsetof(h.driverStatus), 70},
		"resid":         {unsafe.Offsetof(h.resid), 72},
		"info":          {unsafe.Offsetof(h.info), 80},
	} {
		assert.Equal(t, got[1], got[0], name)
	}
}

func TestNewSgIOHdr(t *testing.T) {
	cdb := inquiryCDB(true, 0x83, 255)
	data := make([]byte, 255)
	sense := make([]byte, senseSize)
	h := newSgIOHdr(cdb, data, sense, 20*time.Second)
	assert.Equal(t, int32('S'), h.interfaceID)
	assert.Equal(t, int32(-3), h.dxferDirection, "SG_DXFER_FROM_DEV")
	assert.Equal(t, uint8(6), h.cmdLen)
	assert.Equal(t, uint8(96), h.mxSbLen)
	assert.Equal(t, uint32(255), h.dxferLen)
	assert.Equal(t, unsafe.Pointer(&data[0]), h.dxferp)
	assert.Equal(t, unsafe.Pointer(&cdb[0]), h.cmdp)
	assert.Equal(t, unsafe.Pointer(&sense[0]), h.sbp)
	assert.Equal(t, uint32(20000), h.timeout)

	h = newSgIOHdr(cdb, nil, sense, time.Second)
	assert.Equal(t, int32(-1), h.dxferDirection, "SG_DXFER_NONE")
	assert.Nil(t, h.dxferp)
}

// completed returns a header as the kernel hands it back.
func completed(status uint8, host uint16, resid int32, senseLen uint8) *sgIOHdr {
	return &sgIOHdr{dxferLen: 96, status: status, hostStatus: host, resid: resid, sbLenWr: senseLen}
}

func TestResultGood(t *testing.T) {
	n, err := completed(0, 0, 60, 0).result(opInquiry, nil)
	require.NoError(t, err)
	assert.Equal(t, 36, n, "dxfer_len minus resid")
}

func TestResultCheckConditionFixedSense(t *testing.T) {
	// Fixed format, current; ILLEGAL REQUEST; additional length 10; ASC
	// 24h ASCQ 00h: what LIO answers for a VPD page it does not have.
	sense := []byte{0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0, 0, 0, 0}
	_, err := completed(0x02, 0, 96, uint8(len(sense))).result(opInquiry, sense)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrIllegalRequest)
	assert.NotErrorIs(t, err, ErrUnitAttention)
	var cc *CheckConditionError
	require.ErrorAs(t, err, &cc)
	assert.Equal(t, Sense{Key: SenseIllegalRequest, ASC: 0x24}, cc.Sense)
	assert.Equal(t, "INQUIRY: check condition: ILLEGAL REQUEST, invalid field in cdb (24/00)", err.Error())
}

func TestResultCheckConditionDescriptorSense(t *testing.T) {
	// Descriptor format, current; UNIT ATTENTION 29/00; no descriptors.
	sense := []byte{0x72, 0x06, 0x29, 0x00, 0, 0, 0, 0}
	_, err := completed(0x02, 0, 0, 8).result(opServiceActionIn16, sense)
	assert.ErrorIs(t, err, ErrUnitAttention)
	assert.Contains(t, err.Error(), "READ CAPACITY(16): check condition: UNIT ATTENTION, power on, reset, or bus device reset occurred (29/00)")
}

func TestResultRecoveredErrorIsSuccess(t *testing.T) {
	sense := []byte{0x70, 0, 0x01, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x17, 0x01, 0, 0, 0, 0}
	n, err := completed(0x02, 0, 0, 18).result(opInquiry, sense)
	require.NoError(t, err)
	assert.Equal(t, 96, n)
}

func TestResultCheckConditionWithoutSense(t *testing.T) {
	_, err := completed(0x02, 0, 0, 0).result(opInquiry, make([]byte, 96))
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestResultTransportFailure(t *testing.T) {
	_, err := completed(0, 0x01, 96, 0).result(opPersistentReserveIn, nil)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, uint16(1), se.Host)
	assert.Equal(t, "PERSISTENT RESERVE IN: transport failure: DID_NO_CONNECT (the path is gone)", err.Error())
}

func TestResultReservationConflict(t *testing.T) {
	_, err := completed(0x18, 0, 96, 0).result(opServiceActionIn16, nil)
	assert.ErrorIs(t, err, ErrReservationConflict)
	assert.Equal(t, "READ CAPACITY(16): status RESERVATION CONFLICT", err.Error())
	_, err = completed(0x08, 0, 96, 0).result(opInquiry, nil)
	assert.False(t, errors.Is(err, ErrReservationConflict))
	assert.Equal(t, "INQUIRY: status BUSY", err.Error())
}

func TestParseSense(t *testing.T) {
	for name, c := range map[string]struct {
		in   []byte
		want Sense
		bad  bool
	}{
		"fixed deferred":       {in: []byte{0xf1, 0, 0x03, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x11, 0x00}, want: Sense{Key: SenseMediumError, ASC: 0x11, Deferred: true}},
		"fixed without asc":    {in: []byte{0x70, 0, 0x02, 0, 0, 0, 0, 0x00}, want: Sense{Key: SenseNotReady}},
		"descriptor":           {in: []byte{0x72, 0x05, 0x20, 0x00}, want: Sense{Key: SenseIllegalRequest, ASC: 0x20}},
		"descriptor deferred":  {in: []byte{0x73, 0x04, 0x44, 0x00}, want: Sense{Key: SenseHardwareError, ASC: 0x44, Deferred: true}},
		"empty":                {in: nil, bad: true},
		"vendor response code": {in: []byte{0x7f, 0, 0}, bad: true},
		"descriptor too short": {in: []byte{0x72, 0x05}, bad: true},
		"fixed too short":      {in: []byte{0x70, 0}, bad: true},
	} {
		s, err := parseSense(c.in)
		if c.bad {
			assert.ErrorIs(t, err, ErrMalformed, name)
			continue
		}
		require.NoError(t, err, name)
		assert.Equal(t, c.want, s, name)
	}
	assert.Equal(t, "MEDIUM ERROR, (11/00) (deferred)", Sense{Key: SenseMediumError, ASC: 0x11, Deferred: true}.String())
}

func TestCheckConditionIsNotReady(t *testing.T) {
	err := error(&CheckConditionError{Op: opInquiry, Sense: Sense{Key: SenseNotReady, ASC: 0x04, ASCQ: 0x01}})
	assert.ErrorIs(t, err, ErrNotReady)
	assert.NotErrorIs(t, err, ErrIllegalRequest)
}
