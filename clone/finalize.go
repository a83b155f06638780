package clone

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Swapper is the device-mapper side of Finalize for one device. DMDevice
// implements it over a dm.Client.
type Swapper interface {
	// Name is the device-mapper name, for messages.
	Name() string
	// Progress reads the clone status; its error wraps ErrNotClone when
	// the live table is not a clone.
	Progress(ctx context.Context) (Progress, error)
	// Length returns the live table's total length in sectors.
	Length(ctx context.Context) (uint64, error)
	// LinearOver reports whether the live table is a single linear line
	// over device from its sector 0.
	LinearOver(ctx context.Context, device string) (bool, error)
	// SwapToLinear replaces the live table with one linear line of length
	// sectors over device from its sector 0: load it inactive, suspend
	// with flush, resume. On failure the device keeps serving its clone
	// table. It returns how long I/O to the device was held.
	SwapToLinear(ctx context.Context, device string, length uint64) (time.Duration, error)
}

// ErrNotHydrated is wrapped by the error Finalize returns before every
// region is hydrated.
var ErrNotHydrated = errors.New("hydration is not complete")

// NotHydratedError is returned by Finalize before hydration completes.
type NotHydratedError struct {
	Device          string
	Hydrated, Total uint64
}

// Error gives the progress and what to do.
func (e *NotHydratedError) Error() string {
	pct := 0.0
	if e.Total > 0 {
		pct = 100 * float64(e.Hydrated) / float64(e.Total)
	}
	return fmt.Sprintf("clone: finalize %s: %v: %d of %d regions hydrated (%.1f%%); wait until it reaches 100%% (lunferry migrate status), the old LUN still holds the rest of the data",
		e.Device, ErrNotHydrated, e.Hydrated, e.Total, pct)
}

// Unwrap returns ErrNotHydrated.
func (e *NotHydratedError) Unwrap() error { return ErrNotHydrated }

// FinalizeResult reports a Finalize.
type FinalizeResult struct {
	// Suspended is how long host I/O was held during the swap.
	Suspended time.Duration `json:"suspended_ns"`
	// Length is the length of the device in sectors, the same before and
	// after: the host sees no size change.
	Length uint64 `json:"length_sectors"`
	// AlreadyDone is set when the device was already linear over the new
	// LUN (a repeated or resumed finalize); nothing was changed.
	AlreadyDone bool `json:"already_done"`
}

// Finalize swaps a fully hydrated clone device live to a linear table over
// newLUN, of the same length, so the host keeps its session and sees
// neither an error nor a size change; afterwards the old LUN and the
// metadata device are no longer used by the device and can be detached
// and freed. It refuses with a *NotHydratedError (wrapping ErrNotHydrated)
// before hydration is complete, and refuses to touch a device that is
// neither a clone nor already linear over newLUN. It is idempotent.
func Finalize(ctx context.Context, s Swapper, newLUN string) (FinalizeResult, error) {
	name := s.Name()
	p, err := s.Progress(ctx)
	if errors.Is(err, ErrNotClone) {
		ok, lerr := s.LinearOver(ctx, newLUN)
		if lerr != nil {
			return FinalizeResult{}, fmt.Errorf("clone: finalize %s: %w", name, lerr)
		}
		if !ok {
			return FinalizeResult{}, fmt.Errorf("clone: finalize %s: the device is neither a clone nor linear over %s; refusing to change it: check its table with \"dmsetup table %s\"", name, newLUN, name)
		}
		length, lerr := s.Length(ctx)
		if lerr != nil {
			return FinalizeResult{}, fmt.Errorf("clone: finalize %s: %w", name, lerr)
		}
		return FinalizeResult{AlreadyDone: true, Length: length}, nil
	}
	if err != nil {
		return FinalizeResult{}, fmt.Errorf("clone: finalize %s: %w", name, err)
	}
	if !p.Complete() {
		return FinalizeResult{}, &NotHydratedError{Device: name, Hydrated: p.HydratedRegions, Total: p.TotalRegions}
	}
	length, err := s.Length(ctx)
	if err != nil {
		return FinalizeResult{}, fmt.Errorf("clone: finalize %s: %w", name, err)
	}
	suspended, err := s.SwapToLinear(ctx, newLUN, length)
	if err != nil {
		return FinalizeResult{}, fmt.Errorf("clone: finalize %s: swap to linear over %s: %w", name, newLUN, err)
	}
	res := FinalizeResult{Suspended: suspended, Length: length}
	ok, err := s.LinearOver(ctx, newLUN)
	if err != nil {
		return res, fmt.Errorf("clone: finalize %s: swapped, but reading the table back failed: %w; check \"dmsetup table %s\" before detaching the old LUN", name, err, name)
	}
	if !ok {
		return res, fmt.Errorf("clone: finalize %s: after the swap the live table is not linear over %s; do not detach the old LUN, check \"dmsetup table %s\"", name, newLUN, name)
	}
	if got, err := s.Length(ctx); err == nil && got != length {
		return res, fmt.Errorf("clone: finalize %s: the device is now %d sectors, was %d; check \"dmsetup table %s\"", name, got, length, name)
	}
	return res, nil
}
