package plantest

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
)

func (l LUNInfo) blockSize() uint32 {
	if l.BlockSize == 0 {
		return 512
	}
	return l.BlockSize
}

// disk is the LUN's disk at path p.
func (l LUNInfo) disk(p string) plan.Disk {
	return plan.Disk{Path: p, SizeBytes: l.Size, ID: l.ID, Dev: devNumber(p), LogicalBlockSize: l.blockSize(),
		WriteBack: !l.WriteThrough, FUA: !l.NoFUA}
}

// identity is the LUN's SCSI identity: Identity when set, else an NAA-6
// designator (a NetApp-like company id) derived from ID, which LIO can
// reproduce.
func (l LUNInfo) identity() scsi.Identity {
	if l.Identity != nil {
		return *l.Identity
	}
	sum := sha256.Sum256([]byte(l.ID))
	v := make([]byte, 16)
	copy(v, sum[:])
	v[0], v[1], v[2], v[3] = 0x60, 0x0a, 0x09, 0x80|v[3]&0x0f // NAA 6, company id 00a098
	bs := l.blockSize()
	return scsi.Identity{
		Inquiry:     scsi.Inquiry{Vendor: "NETAPP", Product: "LUN C-Mode", Revision: "9110"},
		Pages:       scsi.HexBytes{0x00, 0x80, 0x83},
		UnitSerial:  fmt.Sprintf("%x", sum[:6]),
		Designators: []scsi.Designator{{CodeSet: scsi.CodeSetBinary, Association: scsi.AssocLogicalUnit, Type: scsi.TypeNAA, Value: v}},
		Capacity:    scsi.Capacity{LastLBA: l.Size/uint64(bs) - 1, LogicalBlockSize: bs},
	}
}

// lunOf returns the LUN behind a disk path.
func (k *Kernel) lunOf(disk string) (LUNInfo, error) {
	key, ok := k.disks[disk]
	if !ok {
		return LUNInfo{}, fmt.Errorf("%s: no such disk", disk)
	}
	return k.LUNs[key], nil
}

// Identity implements plan.Initiator.
func (k *Kernel) Identity(ctx context.Context, disk string) (scsi.Identity, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Identity", disk); err != nil {
		return scsi.Identity{}, err
	}
	l, err := k.lunOf(disk)
	if err != nil {
		return scsi.Identity{}, err
	}
	return l.identity(), nil
}

// Reservations implements plan.Initiator.
func (k *Kernel) Reservations(ctx context.Context, disk string) (scsi.Reservations, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Reservations", disk); err != nil {
		return scsi.Reservations{}, err
	}
	l, err := k.lunOf(disk)
	if err != nil {
		return scsi.Reservations{}, err
	}
	if k.NoPRIn[k.disks[disk]] {
		return scsi.Reservations{}, &scsi.CheckConditionError{Op: 0x5e, Sense: scsi.Sense{Key: scsi.SenseIllegalRequest, ASC: 0x20}}
	}
	return k.fenceOf(k.disks[disk], l.Reservations), nil
}

// ensure the fake still implements the port.
var _ plan.Initiator = (*Kernel)(nil)
