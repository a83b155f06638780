package kernel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
)

// initiatorPort adapts initiator.Client to plan.Initiator.
type initiatorPort struct {
	c       *initiator.Client
	timeout time.Duration
	// owner is the uid that must own secret files (0, root).
	owner int
	// view, in a snapshot, answers HasSession and SessionState.
	view *initiator.SessionView
}

// Snapshot implements plan.Snapshotter: one listing of the sessions for
// a status's lookups.
func (k *initiatorPort) Snapshot() plan.Initiator {
	s := *k
	s.view = k.c.SessionView()
	return &s
}

// sessionTo looks n up in the snapshot's view, or in sysfs now.
func (k *initiatorPort) sessionTo(ctx context.Context, n initiator.Node) (initiator.Session, bool, error) {
	if k.view != nil {
		return k.view.SessionTo(n)
	}
	return k.c.SessionTo(ctx, n)
}

func node(t plan.Target) (initiator.Node, error) {
	p, err := initiator.ParsePortal(t.Portal)
	if err != nil {
		return initiator.Node{}, err
	}
	return initiator.Node{TargetIQN: t.IQN, Portal: p}, nil
}

func (k *initiatorPort) Login(ctx context.Context, t plan.Target) error {
	n, err := node(t)
	if err != nil {
		return err
	}
	// Session and discovery credentials are apart: many arrays want CHAP
	// on sessions and none on discovery, and refuse a discovery that
	// offers it.
	chap, err := loadCHAP(t.CHAP, k.owner)
	if err != nil {
		return err
	}
	disc, err := loadCHAP(t.DiscoveryCHAP, k.owner)
	if err != nil {
		return err
	}
	err = k.c.Login(ctx, n, initiator.LoginOptions{CHAP: chap, DiscoveryCHAP: disc, Timeouts: t.Timeouts})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, initiator.ErrDiscoveryAuthFailed):
		return fmt.Errorf("%w: %w (discovery credentials are the LUN's discoveryChap in the runbook)", plan.ErrLoginRefused, err)
	case errors.Is(err, initiator.ErrUnreachable):
		return fmt.Errorf("%w: %w", plan.ErrUnreachable, err)
	case errors.Is(err, initiator.ErrAuthFailed), errors.Is(err, initiator.ErrLoginRefused):
		return fmt.Errorf("%w: %w", plan.ErrLoginRefused, err)
	}
	return err
}

func (k *initiatorPort) Logout(ctx context.Context, t plan.Target) error {
	n, err := node(t)
	if err != nil {
		return err
	}
	return k.c.Logout(ctx, n)
}

func (k *initiatorPort) FindDisk(ctx context.Context, t plan.Target, lun int) (plan.Disk, error) {
	n, err := node(t)
	if err != nil {
		return plan.Disk{}, err
	}
	timeout := k.timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	d, err := k.c.FindDisk(ctx, n, uint64(lun), timeout)
	if err != nil {
		return plan.Disk{}, err
	}
	return plan.Disk{Path: d.Path, SizeBytes: uint64(d.Size), ID: d.ID, Dev: fmt.Sprintf("%d:%d", d.Major, d.Minor),
		LogicalBlockSize: uint32(d.LogicalBlockSize), WriteBack: d.Cache.WriteBack, FUA: d.Cache.FUA}, nil
}

func (k *initiatorPort) HasSession(ctx context.Context, t plan.Target) (bool, error) {
	n, err := node(t)
	if err != nil {
		return false, err
	}
	_, ok, err := k.sessionTo(ctx, n)
	return ok, err
}

func (k *initiatorPort) SessionState(ctx context.Context, t plan.Target) (initiator.Session, bool, error) {
	n, err := node(t)
	if err != nil {
		return initiator.Session{}, false, err
	}
	return k.sessionTo(ctx, n)
}

func (k *initiatorPort) SetReadOnly(ctx context.Context, disk string) error {
	return k.c.SetReadOnly(disk)
}

// brokenInitiator reports why the initiator client could not be made.
type brokenInitiator struct{ err error }

func (b brokenInitiator) Login(context.Context, plan.Target) error  { return b.err }
func (b brokenInitiator) Logout(context.Context, plan.Target) error { return b.err }
func (b brokenInitiator) FindDisk(context.Context, plan.Target, int) (plan.Disk, error) {
	return plan.Disk{}, b.err
}
func (b brokenInitiator) SetReadOnly(context.Context, string) error             { return b.err }
func (b brokenInitiator) HasSession(context.Context, plan.Target) (bool, error) { return false, b.err }
func (b brokenInitiator) SessionState(context.Context, plan.Target) (initiator.Session, bool, error) {
	return initiator.Session{}, false, b.err
}
func (b brokenInitiator) Identity(context.Context, string) (scsi.Identity, error) {
	return scsi.Identity{}, b.err
}
func (b brokenInitiator) Reservations(context.Context, string) (scsi.Reservations, error) {
	return scsi.Reservations{}, b.err
}

// Identity implements plan.Initiator over SG_IO.
func (k *initiatorPort) Identity(ctx context.Context, disk string) (scsi.Identity, error) {
	return scsi.Read(disk)
}

// Reservations implements plan.Initiator over SG_IO.
func (k *initiatorPort) Reservations(ctx context.Context, disk string) (scsi.Reservations, error) {
	return scsi.ReadReservations(disk)
}
