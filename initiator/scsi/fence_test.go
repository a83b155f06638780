package scsi

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Golden CDBs and parameter lists, byte by byte from SPC-4 6.16 (the
// layouts sg_persist sends).
func TestPROutCDB(t *testing.T) {
	assert.Equal(t, []byte{0x5f, 0x06, 0x00, 0, 0, 0x00, 0x00, 0x00, 0x18, 0}, prOutCDB(prOutRegisterIgnore, 0),
		"REGISTER AND IGNORE EXISTING KEY, parameter list length 24")
	assert.Equal(t, []byte{0x5f, 0x01, 0x05, 0, 0, 0x00, 0x00, 0x00, 0x18, 0}, prOutCDB(prOutReserve, WriteExclusiveRegistrantsOnly),
		"RESERVE, scope LU, type 5")
	assert.Equal(t, []byte{0x5f, 0x02, 0x05, 0, 0, 0x00, 0x00, 0x00, 0x18, 0}, prOutCDB(prOutRelease, WriteExclusiveRegistrantsOnly))
	assert.Equal(t, []byte{0x5f, 0x04, 0x05, 0, 0, 0x00, 0x00, 0x00, 0x18, 0}, prOutCDB(prOutPreempt, WriteExclusiveRegistrantsOnly))
	assert.Equal(t, "Write Exclusive - Registrants Only", WriteExclusiveRegistrantsOnly.String())
}

func TestPROutParams(t *testing.T) {
	p := prOutParams(0x4c46000000000001, 0x0102030405060708)
	assert.Equal(t, []byte{
		0x4c, 0x46, 0, 0, 0, 0, 0, 0x01, // reservation key
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // service action reservation key
		0, 0, 0, 0, // obsolete
		0x00,    // SPEC_I_PT, ALL_TG_PT, APTPL all 0
		0, 0, 0, // reserved, obsolete
	}, p)
}

// prLU is a logical unit's persistent reservations as SPC-4 (and LIO's
// target_core_pr.c) keep them, shared by the nexuses of a test.
type prLU struct {
	keys   map[string]uint64 // nexus -> key
	holder string            // nexus holding the reservation, "" for none
	typ    ReservationType
	// refuse answers every PR OUT with ILLEGAL REQUEST (an array without
	// persistent reservations).
	refuse bool
}

// prNexus is one I_T nexus to a prLU.
type prNexus struct {
	lu   *prLU
	name string
	sent []string
}

func conflict() error {
	return &StatusError{Op: opPersistentReserveOut, Status: StatusReservationConflict}
}

func (n *prNexus) DataOut(cdb, data []byte) error {
	lu, action, typ := n.lu, cdb[1]&0x1f, ReservationType(cdb[2]&0xf)
	key, sa := binary.BigEndian.Uint64(data[0:8]), binary.BigEndian.Uint64(data[8:16])
	n.sent = append(n.sent, map[byte]string{prOutReserve: "reserve", prOutRelease: "release", prOutPreempt: "preempt", prOutRegisterIgnore: "register-ignore"}[action])
	if lu.refuse {
		return illegalRequest(opPersistentReserveOut, 0x20)
	}
	mine, registered := lu.keys[n.name]
	if action != prOutRegisterIgnore && (!registered || mine != key) {
		return conflict()
	}
	switch action {
	case prOutRegisterIgnore:
		if sa == 0 {
			delete(lu.keys, n.name)
			if lu.holder == n.name {
				lu.holder = ""
			}
			return nil
		}
		lu.keys[n.name] = sa
	case prOutReserve:
		if lu.holder != "" && lu.holder != n.name {
			return conflict()
		}
		lu.holder, lu.typ = n.name, typ
	case prOutRelease:
		if lu.holder == n.name {
			lu.holder = ""
		}
	case prOutPreempt:
		n.lu.preempt(n.name, sa, typ)
	}
	return nil
}

// preempt follows core_scsi3_pro_preempt: a holder under sa loses the
// reservation to the caller and every other registration of sa goes;
// without such a holder every registration of sa goes, the caller's too.
func (lu *prLU) preempt(caller string, sa uint64, typ ReservationType) {
	held := lu.holder != "" && lu.keys[lu.holder] == sa
	for nx, k := range lu.keys {
		if k == sa && (!held || nx != caller) {
			delete(lu.keys, nx)
		}
	}
	if held {
		lu.holder, lu.typ = caller, typ
	}
}

func (n *prNexus) DataIn(cdb, buf []byte) (int, error) {
	lu := n.lu
	var b []byte
	switch cdb[1] {
	case prReadKeys:
		b = make([]byte, 8)
		for _, k := range lu.keys {
			b = binary.BigEndian.AppendUint64(b, k)
		}
	case prReadReservation:
		b = make([]byte, 8)
		if lu.holder != "" {
			b = binary.BigEndian.AppendUint64(b, lu.keys[lu.holder])
			b = append(b, 0, 0, 0, 0, 0, byte(lu.typ), 0, 0)
		}
	}
	binary.BigEndian.PutUint32(b[4:8], uint32(len(b)-8))
	return copy(buf, b), nil
}

func newPRLU() *prLU { return &prLU{keys: map[string]uint64{}} }

func (n *prNexus) reservations(t *testing.T) Reservations {
	r, err := readReservations(n)
	require.NoError(t, err)
	return r
}

func TestFenceAndUnfence(t *testing.T) {
	lu := newPRLU()
	proxy := &prNexus{lu: lu, name: "proxy"}
	const key = 0x4c46a1b2c3d4e5f6
	require.NoError(t, fence(proxy, key))
	assert.Equal(t, []string{"register-ignore", "reserve"}, proxy.sent)
	assert.True(t, Fenced(proxy.reservations(t), key))
	require.NoError(t, fence(proxy, key), "fencing again is a no-op")
	assert.True(t, Fenced(proxy.reservations(t), key))

	require.NoError(t, unfence(proxy, key))
	r := proxy.reservations(t)
	assert.Empty(t, r.Keys)
	assert.Nil(t, r.Reservation)
	require.NoError(t, unfence(proxy, key), "unfencing again is a no-op")
}

// TestFenceTakesOverItsOwnStaleReservation: after a reboot the proxy's
// session is another nexus; the reservation its key still holds through
// the old nexus is taken over, and unfence leaves nothing of the key.
func TestFenceTakesOverItsOwnStaleReservation(t *testing.T) {
	lu := newPRLU()
	const key = 0x4c46000000000007
	require.NoError(t, fence(&prNexus{lu: lu, name: "proxy-before-reboot"}, key))
	again := &prNexus{lu: lu, name: "proxy-after-reboot"}
	require.NoError(t, fence(again, key))
	assert.Equal(t, []string{"register-ignore", "reserve", "preempt"}, again.sent)
	assert.Equal(t, "proxy-after-reboot", lu.holder)
	assert.Equal(t, map[string]uint64{"proxy-after-reboot": key}, lu.keys, "the stale registration is gone")

	lu2 := newPRLU()
	require.NoError(t, fence(&prNexus{lu: lu2, name: "before"}, key))
	require.NoError(t, unfence(&prNexus{lu: lu2, name: "after"}, key))
	assert.Empty(t, lu2.keys)
	assert.Empty(t, lu2.holder)
}

func TestFenceRefusesAnotherHolder(t *testing.T) {
	lu := newPRLU()
	require.NoError(t, fence(&prNexus{lu: lu, name: "cluster"}, 0x1234))
	err := fence(&prNexus{lu: lu, name: "proxy"}, 0x4c46)
	require.ErrorIs(t, err, ErrReservationConflict)
	assert.Contains(t, err.Error(), "key 0x1234 holds a Write Exclusive - Registrants Only reservation")

	proxy := &prNexus{lu: lu, name: "proxy"}
	require.NoError(t, unfence(proxy, 0x4c46), "another key's reservation is left alone")
	assert.Equal(t, "cluster", lu.holder)
	assert.Equal(t, map[string]uint64{"cluster": 0x1234}, lu.keys)
}

func TestFenceOnAnArrayWithoutReservations(t *testing.T) {
	lu := newPRLU()
	lu.refuse = true
	err := fence(&prNexus{lu: lu, name: "proxy"}, 0x4c46)
	assert.ErrorIs(t, err, ErrIllegalRequest)
	assert.Contains(t, err.Error(), "PERSISTENT RESERVE OUT: check condition: ILLEGAL REQUEST")
	assert.Error(t, fence(&prNexus{lu: newPRLU(), name: "proxy"}, 0))
}

func TestFenced(t *testing.T) {
	r := Reservations{Keys: []uint64{7}, Reservation: &Reservation{Key: 7, Type: WriteExclusiveRegistrantsOnly}}
	assert.True(t, Fenced(r, 7))
	assert.False(t, Fenced(r, 8))
	r.Reservation.Type = 1
	assert.False(t, Fenced(r, 7), "another type")
	assert.False(t, Fenced(Reservations{Keys: []uint64{7}}, 7), "registered, not reserved")
}

func TestNewSgIOHdrOut(t *testing.T) {
	cdb, data, sense := prOutCDB(prOutReserve, 5), prOutParams(1, 0), make([]byte, senseSize)
	h := newSgIOHdrOut(cdb, data, sense, 0)
	assert.Equal(t, int32(-2), h.dxferDirection, "SG_DXFER_TO_DEV")
	assert.Equal(t, uint32(24), h.dxferLen)
}
