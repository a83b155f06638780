package plan

import (
	"context"
	"errors"
	"fmt"

	"github.com/lunferry/lunferry/clone"
)

// trackedEra returns v's era record when its era layer tracks the host's
// writes since cutover, nil otherwise.
func (v *Volume) trackedEra() *EraState {
	if o := v.object(ObjEra); o == nil || o.Pending || v.Era == nil || v.Era.Since == 0 {
		return nil
	}
	return v.Era
}

// hostWritten records in rep the blocks the host wrote since cutover, or
// refuses a volume whose era layer does not track them.
func (p *Planner) hostWritten(ctx context.Context, v *Volume, rep *VerifyReport) error {
	e := v.trackedEra()
	if e == nil {
		return fmt.Errorf("plan: volume %s: %w: it was cut over (%s) without an era layer, so the host's writes since then are on the new LUN only and untracked: pass --host-stopped only if it has not written",
			v.Spec.Name, ErrHostWrites, v.CutOverAt.Format("2006-01-02 15:04:05 MST"))
	}
	written, err := p.o.Ports.Era.WrittenSince(ctx, EraName(v.Spec.Name), e.MetadataDevice, e.Since)
	if err != nil {
		return fmt.Errorf("plan: volume %s: read the host's writes since era %d: %w", v.Spec.Name, e.Since, err)
	}
	rep.HostWritten = clip(written, v.SizeSectors*512)
	rep.HostWrittenBytes = 0
	for _, x := range rep.HostWritten {
		rep.HostWrittenBytes += x.Length
	}
	return nil
}

// dropWrittenDuring reads the host's writes again once the comparison is
// done and moves the differences in blocks it wrote meanwhile to
// rep.WrittenDuring: dm-era marks a block before the write reaches the
// device below, so every write the comparison could have read is in it.
// It returns the mismatch error that remains (nil when none does).
func (p *Planner) dropWrittenDuring(ctx context.Context, name string, e *EraState, since uint32, size uint64, rep *VerifyReport, r *clone.VerifyResult, a, b string, mismatch error) error {
	var written []clone.Extent
	err := p.locked(ctx, func() error {
		var err error
		written, err = p.o.Ports.Era.WrittenSince(ctx, EraName(name), e.MetadataDevice, since)
		return err
	})
	if err != nil {
		return errors.Join(mismatch, fmt.Errorf("read the host's writes after the comparison: %w", err))
	}
	written = clip(written, size)
	var kept []clone.Extent
	for _, m := range r.Mismatches {
		if overlaps(m, written) {
			rep.WrittenDuring = append(rep.WrittenDuring, m)
			r.MismatchedBytes -= min(m.Length, r.MismatchedBytes)
			continue
		}
		kept = append(kept, m)
	}
	r.Mismatches = kept
	if r.Equal() {
		return nil
	}
	if len(kept) == 0 {
		// Differences beyond the listed ones remain: unattributed.
		return fmt.Errorf("%w: %d bytes in differing sectors beyond the ranges listed, all of which the host wrote during the comparison: rerun verify", clone.ErrMismatch, r.MismatchedBytes)
	}
	return &clone.MismatchError{A: a, B: b, Result: *r}
}

// verifyHostView compares the new LUN with the host's view (the device
// the export serves) over the blocks the host wrote since cutover, where
// the clone has hydrated them: both must hold the host's data. The era
// checkpointed at start sets apart what the host writes meanwhile.
func (p *Planner) verifyHostView(ctx context.Context, name string, e *EraState, during uint32, view, meta string, size uint64, rep *VerifyReport, o VerifyOptions) error {
	var err error
	rep.HostView, err = p.o.Ports.Verifier.VerifyHostView(ctx, rep.New, view, meta, rep.HostWritten,
		clone.VerifyOptions{Rate: o.Rate, OnProgress: o.OnProgress})
	if err != nil && errors.Is(err, clone.ErrMismatch) {
		err = p.dropWrittenDuring(ctx, name, e, during, size, rep, &rep.HostView, rep.New, view, err)
	}
	if err != nil {
		return fmt.Errorf("the new LUN and the host's view over the blocks the host wrote: %w", err)
	}
	return nil
}

// clip cuts sorted extents at size.
func clip(ext []clone.Extent, size uint64) []clone.Extent {
	var out []clone.Extent
	for _, x := range ext {
		if x.Offset >= size {
			break
		}
		x.Length = min(x.Length, size-x.Offset)
		out = append(out, x)
	}
	return out
}

// overlaps reports whether x shares a byte with any of the sorted set.
func overlaps(x clone.Extent, set []clone.Extent) bool {
	for _, s := range set {
		if s.Offset < x.End() && x.Offset < s.End() {
			return true
		}
	}
	return false
}
