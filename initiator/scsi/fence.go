package scsi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// DataOuter sends one SCSI command that carries parameter data to a
// logical unit. *Device does it with SG_IO; tests record what it sends.
type DataOuter interface {
	// DataOut sends cdb with data. It returns an error that wraps a
	// *CheckConditionError or *StatusError when the device refused.
	DataOut(cdb, data []byte) error
}

// PRCommander reads and changes persistent reservations.
type PRCommander interface {
	Commander
	DataOuter
}

// WriteExclusiveRegistrantsOnly is reservation type 5 (SPC-4 table 169):
// every I_T nexus may read; only registered ones may write.
const WriteExclusiveRegistrantsOnly ReservationType = 5

// PERSISTENT RESERVE OUT service actions (SPC-4 6.16.2) and the length of
// its basic parameter list.
const (
	prOutReserve        = 0x01
	prOutRelease        = 0x02
	prOutPreempt        = 0x04
	prOutRegisterIgnore = 0x06
	prOutParamLen       = 24
)

// prOutCDB builds PERSISTENT RESERVE OUT: the service action in byte 1
// bits 4-0, scope (0: logical unit) in byte 2 bits 7-4 and type in bits
// 3-0, the parameter list length in bytes 5-8.
func prOutCDB(action byte, t ReservationType) []byte {
	cdb := []byte{opPersistentReserveOut, action & 0x1f, byte(t) & 0xf, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(cdb[5:9], prOutParamLen)
	return cdb
}

// prOutParams builds the basic parameter list: the reservation key
// (bytes 0-7), the service action reservation key (8-15); the flags of
// byte 20 (SPEC_I_PT, ALL_TG_PT, APTPL) stay 0: the registration is for
// this I_T nexus only and does not persist through the array's power loss.
func prOutParams(key, saKey uint64) []byte {
	p := make([]byte, prOutParamLen)
	binary.BigEndian.PutUint64(p[0:8], key)
	binary.BigEndian.PutUint64(p[8:16], saKey)
	return p
}

// prOut sends one PERSISTENT RESERVE OUT, again after a UNIT ATTENTION.
func prOut(c DataOuter, action byte, t ReservationType, key, saKey uint64) error {
	cdb, p := prOutCDB(action, t), prOutParams(key, saKey)
	for i := 0; ; i++ {
		err := c.DataOut(cdb, p)
		if err == nil || !errors.Is(err, ErrUnitAttention) || i == unitAttentionRetries {
			return err
		}
	}
}

// Fenced reports whether r shows key registered and holding a Write
// Exclusive – Registrants Only reservation.
func Fenced(r Reservations, key uint64) bool {
	res := r.Reservation
	if res == nil || res.Key != key || res.Type != WriteExclusiveRegistrantsOnly {
		return false
	}
	for _, k := range r.Keys {
		if k == key {
			return true
		}
	}
	return false
}

// fence registers key through c's I_T nexus (REGISTER AND IGNORE EXISTING
// KEY) and reserves the logical unit Write Exclusive – Registrants Only:
// every other nexus can read, and writes from any that is not registered
// get RESERVATION CONFLICT. A reservation already held under key by
// another nexus (the proxy's session before a reboot: iSCSI names a nexus
// by its session's ISID too) is taken over with PREEMPT, which also drops
// that nexus's registration. A reservation held under another key is an
// error wrapping ErrReservationConflict.
func fence(c PRCommander, key uint64) error {
	if key == 0 {
		return fmt.Errorf("scsi: fence: key 0 unregisters; give a non-zero key")
	}
	if err := prOut(c, prOutRegisterIgnore, 0, 0, key); err != nil {
		return fmt.Errorf("register key %#x: %w", key, err)
	}
	err := prOut(c, prOutReserve, WriteExclusiveRegistrantsOnly, key, 0)
	if !errors.Is(err, ErrReservationConflict) {
		return wrapIf(err, "reserve with key %#x", key)
	}
	r, rerr := readReservations(c)
	if rerr != nil {
		return fmt.Errorf("reserve with key %#x: %w; reading the holder: %w", key, err, rerr)
	}
	if r.Reservation == nil || r.Reservation.Key != key {
		return fmt.Errorf("reserve with key %#x: %w: %s", key, err, holder(r))
	}
	return wrapIf(prOut(c, prOutPreempt, WriteExclusiveRegistrantsOnly, key, key), "take over the reservation of key %#x", key)
}

// unfence ends what fence (or an earlier session's fence under the same
// key) holds: registered again under key, it preempts key (making this
// nexus the holder where key held the reservation, and dropping every
// other registration of key), releases the reservation if this nexus
// holds it, and unregisters. A reservation under another key is left
// alone.
func unfence(c PRCommander, key uint64) error {
	if err := prOut(c, prOutRegisterIgnore, 0, 0, key); err != nil {
		return fmt.Errorf("register key %#x: %w", key, err)
	}
	if err := prOut(c, prOutPreempt, WriteExclusiveRegistrantsOnly, key, key); err != nil {
		return fmt.Errorf("preempt key %#x: %w", key, err)
	}
	r, err := readReservations(c)
	if err != nil {
		return err
	}
	if r.Reservation != nil && r.Reservation.Key == key {
		if err := prOut(c, prOutRelease, WriteExclusiveRegistrantsOnly, key, 0); err != nil {
			return fmt.Errorf("release key %#x: %w", key, err)
		}
	}
	// REGISTER AND IGNORE EXISTING KEY with 0: unregister, or nothing
	// when preempt already dropped this nexus's registration.
	return wrapIf(prOut(c, prOutRegisterIgnore, 0, 0, 0), "unregister key %#x", key)
}

func holder(r Reservations) string {
	if r.Reservation == nil {
		return "no reservation is held now (another initiator changed it meanwhile)"
	}
	return fmt.Sprintf("key %#x holds a %s reservation", r.Reservation.Key, r.Reservation.Type)
}

func wrapIf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// Fence opens the SCSI disk dev and fences its logical unit under key
// (see fence): a registration and a Write Exclusive – Registrants Only
// reservation. An array without persistent reservations answers with an
// error wrapping ErrIllegalRequest.
func Fence(dev string, key uint64) error {
	return withDevice(dev, "fence", func(d *Device) error { return fence(d, key) })
}

// Unfence opens the SCSI disk dev and releases and unregisters key (see
// unfence).
func Unfence(dev string, key uint64) error {
	return withDevice(dev, "unfence", func(d *Device) error { return unfence(d, key) })
}

func withDevice(dev, what string, fn func(*Device) error) error {
	d, err := Open(dev)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := fn(d); err != nil {
		return fmt.Errorf("scsi: %s %s: %w", what, dev, err)
	}
	return nil
}
