package scsi

import (
	"encoding/binary"
	"fmt"
)

// Reservations is what PERSISTENT RESERVE IN reports of a logical unit's
// SCSI-3 persistent reservations (SPC-4 6.15).
type Reservations struct {
	// Generation is the PR generation, bumped by every registration
	// change.
	Generation uint32 `json:"generation"`
	// Keys are the registered reservation keys (READ KEYS), one per
	// registered I_T nexus.
	Keys []uint64 `json:"keys,omitempty"`
	// Reservation is the persistent reservation held, nil when none
	// (READ RESERVATION).
	Reservation *Reservation `json:"reservation,omitempty"`
}

// Reservation is a held persistent reservation.
type Reservation struct {
	// Key is the holder's reservation key; 0 for the all-registrants
	// types, where every registrant holds it.
	Key uint64 `json:"key"`
	// Scope is byte 21 bits 7-4 (0: the logical unit).
	Scope uint8 `json:"scope"`
	// Type is byte 21 bits 3-0.
	Type ReservationType `json:"type"`
}

// ReservationType is the type of a persistent reservation (SPC-4 table
// 169).
type ReservationType uint8

// String names the type as SPC-4 does.
func (t ReservationType) String() string {
	switch t {
	case 1:
		return "Write Exclusive"
	case 3:
		return "Exclusive Access"
	case 5:
		return "Write Exclusive - Registrants Only"
	case 6:
		return "Exclusive Access - Registrants Only"
	case 7:
		return "Write Exclusive - All Registrants"
	case 8:
		return "Exclusive Access - All Registrants"
	}
	return fmt.Sprintf("type %#x", uint8(t))
}

// PERSISTENT RESERVE IN service actions.
const (
	prReadKeys        = 0x00
	prReadReservation = 0x01
	prHeaderLen       = 8
	prFirstAlloc      = prHeaderLen + 8*32 // 32 keys before asking again
	prMaxLen          = 0xffff
)

// prInCDB builds PERSISTENT RESERVE IN: the service action in byte 1
// bits 4-0, the allocation length in bytes 7-8.
func prInCDB(action byte, alloc int) []byte {
	alloc = min(alloc, prMaxLen)
	return []byte{opPersistentReserveIn, action, 0, 0, 0, 0, 0, byte(alloc >> 8), byte(alloc), 0}
}

// prLength reads the full length of PERSISTENT RESERVE IN parameter
// data: the header and its additional length (bytes 4-7).
func prLength(b []byte) (int, bool) {
	if len(b) < prHeaderLen {
		return 0, false
	}
	return prHeaderLen + int(binary.BigEndian.Uint32(b[4:8])), true
}

// readReservations sends READ KEYS and READ RESERVATION.
func readReservations(c Commander) (Reservations, error) {
	keys, err := dataInGrowing(c, func(n int) []byte { return prInCDB(prReadKeys, n) }, prFirstAlloc, prMaxLen, prLength)
	if err != nil {
		return Reservations{}, err
	}
	r, err := parseReadKeys(keys)
	if err != nil {
		return Reservations{}, err
	}
	res, err := dataIn(c, prInCDB(prReadReservation, prHeaderLen+16), prHeaderLen+16)
	if err != nil {
		return Reservations{}, err
	}
	r.Reservation, err = parseReadReservation(res)
	return r, err
}

// parseReadKeys decodes READ KEYS parameter data: generation (bytes 0-3),
// additional length (4-7), then one 8-byte key per registration. Keys
// past the data that arrived are left out.
func parseReadKeys(b []byte) (Reservations, error) {
	n, ok := prLength(b)
	if !ok {
		return Reservations{}, fmt.Errorf("%w: READ KEYS data of %d bytes", ErrMalformed, len(b))
	}
	r := Reservations{Generation: binary.BigEndian.Uint32(b[0:4])}
	for off := prHeaderLen; off+8 <= min(n, len(b)); off += 8 {
		r.Keys = append(r.Keys, binary.BigEndian.Uint64(b[off:off+8]))
	}
	return r, nil
}

// parseReadReservation decodes READ RESERVATION parameter data:
// generation, additional length (0: no reservation, 16: one), then the
// key (bytes 8-15) and scope and type (byte 21).
func parseReadReservation(b []byte) (*Reservation, error) {
	n, ok := prLength(b)
	if !ok {
		return nil, fmt.Errorf("%w: READ RESERVATION data of %d bytes", ErrMalformed, len(b))
	}
	if n == prHeaderLen {
		return nil, nil
	}
	if len(b) < 22 {
		return nil, fmt.Errorf("%w: READ RESERVATION reports a reservation in %d bytes, want 24", ErrMalformed, len(b))
	}
	return &Reservation{Key: binary.BigEndian.Uint64(b[8:16]), Scope: b[21] >> 4, Type: ReservationType(b[21] & 0xf)}, nil
}
