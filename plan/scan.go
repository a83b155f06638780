package plan

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lunferry/lunferry/clone"
)

// UnreadableScan is what `lunferry run` found on the old LUN for a stalled
// hydration: dm-clone retries a region it cannot read forever and names
// none, so run reads the regions still unhydrated itself, a slice per
// round, and lists the byte ranges that fail.
type UnreadableScan struct {
	// Stall is the stall scanned for (when hydration last progressed).
	Stall time.Time `json:"stall"`
	// Ranges are the unreadable byte ranges of the old LUN found so far
	// (the first 64), Bytes the size of all.
	Ranges []clone.Extent `json:"ranges,omitempty"`
	Bytes  uint64         `json:"bytes"`
	// Scanned counts the bytes looked at; Next is where the next slice
	// starts.
	Scanned uint64 `json:"scanned"`
	Next    uint64 `json:"next,omitempty"`
	// Done is set once every unhydrated region was looked at; At is when
	// the last slice ended.
	Done bool      `json:"done,omitempty"`
	At   time.Time `json:"at"`
	// Note says why the last slice stopped early or could not run (an old
	// LUN that does not answer, metadata that could not be read).
	Note string `json:"note,omitempty"`
}

// Summary says what the scan found, for an admin.
func (u *UnreadableScan) Summary() string {
	var b strings.Builder
	switch {
	case len(u.Ranges) > 0:
		rs := make([]string, len(u.Ranges))
		var listed uint64
		for i, r := range u.Ranges {
			rs[i], listed = r.String(), listed+r.Length
		}
		fmt.Fprintf(&b, "the old LUN returns read errors at %s", strings.Join(rs, ", "))
		if len(rs) > 1 || listed != u.Bytes {
			fmt.Fprintf(&b, " (%s in all)", Bytes(u.Bytes))
		}
	case u.Done:
		fmt.Fprintf(&b, "every unhydrated region of the old LUN (%s) reads without error", Bytes(u.Scanned))
	default:
		fmt.Fprintf(&b, "no read error found yet on the old LUN (%s of its unhydrated regions read)", Bytes(u.Scanned))
	}
	if !u.Done && len(u.Ranges) > 0 {
		fmt.Fprintf(&b, "; scan going on, %s read", Bytes(u.Scanned))
	}
	if u.Note != "" {
		b.WriteString("; " + u.Note)
	}
	return b.String()
}

const (
	// scanSlice bounds the time a round spends scanning one stalled
	// volume (a slice may read one more chunk to move on at all).
	scanSlice = time.Second
	// scanRateCap caps the scan's reads of the old LUN; a stall's
	// unhydrated regions are few.
	scanRateCap = 16 * clone.MiB
)

// scanStalled runs a slice of the scan of a volume stalled since since,
// started afresh for a new stall, and logs what a finished scan found. It
// changes v only.
func (p *Planner) scanStalled(ctx context.Context, v *Volume, since, now time.Time) {
	sc := p.o.Ports.Scanner
	meta := v.object(ObjMetadata)
	if sc == nil || p.o.DryRun || v.OldDisk == nil || meta == nil || meta.Device == "" {
		return
	}
	if v.Unreadable == nil || !v.Unreadable.Stall.Equal(since) {
		v.Unreadable = &UnreadableScan{Stall: since}
	}
	u := v.Unreadable
	if u.Done {
		return
	}
	o := clone.ScanOptions{BlockSize: uint64(v.OldDisk.LogicalBlockSize), Deadline: now.Add(scanSlice), Now: p.o.Now,
		Rate: min(v.Spec.Throttle.RateAt(now), scanRateCap)}
	res, err := sc.Unreadable(ctx, v.OldDisk.Path, meta.Device, u.Next, o)
	u.At, u.Note = p.o.Now().UTC(), ""
	if err != nil {
		u.Note = fmt.Sprintf("the scan could not run: %v", err)
		return
	}
	u.Ranges = clone.Union(u.Ranges, res.Unreadable)
	u.Bytes += res.UnreadableBytes
	u.Scanned += res.Scanned
	u.Next, u.Done = res.Next, res.Complete()
	if !u.Done && res.Stopped != clone.StoppedDeadline {
		u.Note = "scan stopped: " + res.Stopped
	}
	if u.Done {
		p.logf("volume %s: hydration stalled: %s", v.Spec.Name, u.Summary())
	}
}

// unreadableFor returns v's scan if it belongs to the stall since, else
// nil.
func (v *Volume) unreadableFor(since time.Time) *UnreadableScan {
	if v.Unreadable == nil || !v.Unreadable.Stall.Equal(since) {
		return nil
	}
	return v.Unreadable
}

// stallCause says what is known of why v stalled since since.
func stallCause(v *Volume, since time.Time) string {
	if u := v.unreadableFor(since); u != nil && (len(u.Ranges) > 0 || u.Done) {
		return u.Summary()
	}
	return "the old LUN may return read errors (dm-clone retries them forever; see the kernel log for \"hydration failed\") or an array is unreachable"
}
