package dm

import (
	"context"
	"fmt"
	"time"
)

// ReplaceOptions tune Replace.
type ReplaceOptions struct {
	// Force replaces the table of a device without lunferry's prefixes.
	Force bool
	// NoFlush suspends without waiting for in-flight I/O (it is requeued
	// instead). The default flush is what a clone→linear swap wants: every
	// write is on the old table's devices before the new table serves.
	NoFlush bool
}

// ReplaceResult reports how the swap went.
type ReplaceResult struct {
	// Suspended is how long I/O to the device was held: from the start of
	// the suspend to the end of the resume.
	Suspended time.Duration
	// SuspendCall is the part spent suspending (flushing in-flight I/O).
	SuspendCall time.Duration
	// ResumeCall is the part spent resuming (swapping the tables).
	ResumeCall time.Duration
	// Info is the device after the swap.
	Info Info
}

// Replace swaps the device's live table for table: load it inactive,
// suspend (flushing in-flight I/O unless opts.NoFlush), resume. If any step
// fails the device is left serving its old table, and the *StepError says
// which step failed; only if even resuming the old table fails is the
// device left suspended, and the error says so.
func (c *Client) Replace(ctx context.Context, name string, table Table, opts ReplaceOptions) (ReplaceResult, error) {
	info, err := c.Info(ctx, name)
	if err != nil {
		return ReplaceResult{}, fmt.Errorf("dm: replace: %w", err)
	}
	if !opts.Force && !info.Owned() {
		return ReplaceResult{}, fmt.Errorf("dm: replace %s (uuid %q): %w; lunferry changes only devices named %s* with uuid %s*",
			name, info.UUID, ErrNotOwned, NamePrefix, UUIDPrefix)
	}
	if !info.ActivePresent {
		return ReplaceResult{}, fmt.Errorf("dm: replace %s: the device has no active table; use Load and Resume", name)
	}
	if info.Suspended {
		return ReplaceResult{}, fmt.Errorf("dm: replace %s: the device is already suspended (by someone else?); resume it first with \"dmsetup resume %s\"", name, name)
	}
	const serving = "the device still serves its old table"
	oldTable, err := c.Table(ctx, name)
	if err != nil {
		return ReplaceResult{}, fmt.Errorf("dm: replace: %w", err)
	}
	if err := c.Load(ctx, name, table); err != nil {
		return ReplaceResult{}, &StepError{Op: "replace", Name: name, Step: "load", State: serving, Err: err}
	}
	// From here on, finish even if ctx is cancelled: leaving the device
	// suspended would hang every writer.
	bg := context.WithoutCancel(ctx)
	start := time.Now()
	if err := c.Suspend(bg, name, opts.NoFlush); err != nil {
		state := serving
		if cerr := c.ClearInactive(bg, name); cerr != nil {
			state += fmt.Sprintf("; the new table is still loaded inactive (clear it with \"dmsetup clear %s\"): %v", name, cerr)
		}
		// A failed suspend normally leaves the device running, but make sure.
		if i, ierr := c.Info(bg, name); ierr == nil && i.Suspended {
			if rerr := c.Resume(bg, name); rerr != nil {
				state = fmt.Sprintf("the device is left SUSPENDED with its old table: resume it with \"dmsetup resume %s\" (%v)", name, rerr)
			}
		}
		return ReplaceResult{}, &StepError{Op: "replace", Name: name, Step: "suspend", State: state, Err: err}
	}
	suspended := time.Now()
	if err := c.Resume(bg, name); err != nil {
		// The kernel drops the new table when the swap fails; resume again to
		// serve the old one.
		state := serving
		_ = c.ClearInactive(bg, name)
		if rerr := c.Resume(bg, name); rerr != nil {
			state = fmt.Sprintf("the device is left SUSPENDED: resume it with \"dmsetup resume %s\" (%v)", name, rerr)
		}
		// A target may fail to resume after the kernel swapped tables: say
		// which table is live rather than assume.
		if now, terr := c.Table(bg, name); terr != nil {
			state += fmt.Sprintf("; reading the live table failed (%v): check \"dmsetup table %s\"", terr, name)
		} else if !sameLines(now, oldTable) {
			state = "the NEW table is live (the kernel swapped before the failure): check \"dmsetup table " + name + "\" and \"dmsetup info " + name + "\""
		}
		return ReplaceResult{}, &StepError{Op: "replace", Name: name, Step: "resume", State: state, Err: err}
	}
	end := time.Now()
	res := ReplaceResult{Suspended: end.Sub(start), SuspendCall: suspended.Sub(start), ResumeCall: end.Sub(suspended)}
	after, err := c.Info(bg, name)
	if err != nil {
		return res, fmt.Errorf("dm: replace %s: swapped, but reading its state failed: %w", name, err)
	}
	if after.InactivePresent || after.Suspended {
		return res, fmt.Errorf("dm: replace %s: after resume the device is suspended=%v with an inactive table=%v; check \"dmsetup info %s\"",
			name, after.Suspended, after.InactivePresent, name)
	}
	res.Info = after
	return res, nil
}

// sameLines reports whether two raw tables are equal line by line.
func sameLines(a, b []RawLine) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
