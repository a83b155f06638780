package plan

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/lunferry/lunferry/initiator/scsi"
)

// The fence: lunferry's SCSI-3 persistent reservation on the old LUN
// (Write Exclusive - Registrants Only under a key of the volume's own).
// Only the proxy's session is registered, so a host's direct path that a
// hook missed gets RESERVATION CONFLICT instead of writing where nobody
// will read; reads still work everywhere. It is taken at cutover (the
// online one refuses an array that will not take it; the offline one warns
// and goes on), held until finalize detaches the old LUN, rebuilt by
// restore and released by abort.

// CutoverMode is how a volume's cutover runs, fixed at its first run.
type CutoverMode struct {
	// Online: the online cutover (see plan/online.go).
	Online bool `json:"online,omitempty"`
	// NoFence: no reservation is taken on the old LUN.
	NoFence bool `json:"noFence,omitempty"`
	// FenceKey is the reservation key, derived once.
	FenceKey uint64 `json:"fenceKey,omitempty"`
	// Phase is the last online phase completed.
	Phase OnlinePhase `json:"phase,omitempty"`
	// TakeoverHeld is how long the online takeover's swap held the host's
	// I/O.
	TakeoverHeld Duration `json:"takeoverHeld,omitempty"`
}

// fenceKeyPrefix marks lunferry's keys ("LF") in the array's key list.
const fenceKeyPrefix = 0x4c46 << 48

// fenceKey returns v's reservation key, deriving it from the volume's
// name and creation time at first use (the state records it).
func fenceKey(v *Volume) uint64 {
	m := v.mode()
	if m.FenceKey == 0 {
		sum := sha256.Sum256([]byte(v.Spec.Name + "\x00" + v.Created.String()))
		m.FenceKey = fenceKeyPrefix | binary.BigEndian.Uint64(sum[:8])&(1<<48-1)
	}
	return m.FenceKey
}

// mode returns v's cutover mode, made empty when none is recorded.
func (v *Volume) mode() *CutoverMode {
	if v.Cutover == nil {
		v.Cutover = &CutoverMode{}
	}
	return v.Cutover
}

// createFence fences the old LUN (or finds it fenced).
func (p *Planner) createFence(ctx context.Context, v *Volume) error {
	if v.OldDisk == nil {
		return fmt.Errorf("plan: volume %s: old LUN not attached, cannot fence it", v.Spec.Name)
	}
	key := fenceKey(v)
	if _, err := p.push(v, ObjFence, fmt.Sprintf("%#x", key)); err != nil {
		return err
	}
	p.logf("volume %s: fence the old LUN %s: register key %#x, reserve it Write Exclusive - Registrants Only", v.Spec.Name, v.OldDisk.Path, key)
	if err := p.o.Ports.Fencer.Fence(ctx, v.OldDisk.Path, key); err != nil {
		return fmt.Errorf("plan: volume %s: fence the old LUN %s: %w", v.Spec.Name, v.OldDisk.Path, err)
	}
	return p.created(v, ObjFence, v.OldDisk.Path)
}

// tryFence is the offline cutover's fence: taken where the array allows;
// a refusal is a warning (the proxy never writes the old LUN, and the host
// was stopped for the window).
func (p *Planner) tryFence(ctx context.Context, v *Volume) error {
	if v.mode().NoFence {
		return nil
	}
	err := p.create(ctx, v, ObjFence)
	if err == nil {
		return nil
	}
	p.logf("volume %s: warning: the old LUN is not fenced (%v): a host path to the old array left in place could still write it", v.Spec.Name, err)
	if uerr := p.o.Ports.Fencer.Unfence(ctx, v.OldDisk.Path, fenceKey(v)); uerr != nil && !errors.Is(uerr, ErrFenceRefused) {
		p.logf("volume %s: note: dropping a partial registration: %v", v.Spec.Name, uerr)
	}
	return p.pop(v, ObjFence)
}

// removeFence releases the reservation. It needs the old LUN's session and
// disk, which a reboot may have taken or renamed (finalize after its swap,
// an abort without restore), so it attaches the old LUN again; the old
// login object, older on the stack, is removed after it. Once the device
// runs linear over the new LUN an old array that is gone (unreachable, or
// refusing the proxy's login) is only warned about: the migration no
// longer needs it.
func (p *Planner) removeFence(ctx context.Context, v *Volume, o *Object, _ []*Volume) error {
	key := fenceKey(v)
	if err := p.attach(ctx, v, ObjOldLogin); err != nil {
		if !v.Linear || !(errors.Is(err, ErrUnreachable) || errors.Is(err, ErrLoginRefused)) {
			return err
		}
		p.logf("volume %s: warning: cannot reach the old LUN to release reservation key %#x (%v): release it on the old array (e.g. sg_persist --out --preempt --param-rk=%#x --param-sark=%#x --prout-type=5) before a host uses it again",
			v.Spec.Name, key, err, key, key)
		return nil
	}
	p.logf("volume %s: release the old LUN's fence (key %#x)", v.Spec.Name, key)
	return p.o.Ports.Fencer.Unfence(ctx, v.OldDisk.Path, key)
}

// hasFence: the old LUN's session is there and its reservations show the
// key registered and holding Write Exclusive - Registrants Only. While the
// session is in recovery (the old array unreachable) they are not read: a
// PERSISTENT RESERVE IN would wait for the session up to its replacement
// timeout, holding status and run's loop (and with it the outage the host
// sees), and the array keeps the reservation across the reconnection.
func (p *Planner) hasFence(ctx context.Context, v *Volume, o *Object) (bool, error) {
	s, ok, err := p.o.Ports.Initiator.SessionState(ctx, targetOf(v.Spec.Old))
	if err != nil || !ok || v.OldDisk == nil {
		return false, err
	}
	if !s.LoggedIn() {
		return true, nil
	}
	r, err := p.o.Ports.Initiator.Reservations(ctx, v.OldDisk.Path)
	if err != nil {
		return false, err
	}
	return scsi.Fenced(r, fenceKey(v)), nil
}
