package kernel

import (
	"context"

	"github.com/lunferry/lunferry/clone"
)

// verifier implements plan.Verifier with clone's bitmap reader and Verify.
type verifier struct{}

func (verifier) Verify(ctx context.Context, old, nw, meta string, size uint64, skip []clone.Extent, o clone.VerifyOptions) (clone.VerifyResult, error) {
	ext, err := unhydrated(meta)
	if err != nil {
		return clone.VerifyResult{}, err
	}
	// Skipped ranges count as not hydrated: both are sorted and merged.
	ext = merge(ext, skip)
	return clone.Verify(ctx, old, nw, hydrated(ext, size), o)
}

func (verifier) VerifyHostView(ctx context.Context, nw, view, meta string, only []clone.Extent, o clone.VerifyOptions) (clone.VerifyResult, error) {
	ext, err := unhydrated(meta)
	if err != nil {
		return clone.VerifyResult{}, err
	}
	return clone.Verify(ctx, nw, view, intersect(only, ext), o)
}

// intersect returns the parts of the sorted extents only that none of the
// sorted unhydrated ones covers.
func intersect(only, unhydrated []clone.Extent) []clone.Extent {
	var out []clone.Extent
	for _, x := range only {
		at := x.Offset
		for _, u := range unhydrated {
			if u.End() <= at {
				continue
			}
			if u.Offset >= x.End() {
				break
			}
			if u.Offset > at {
				out = append(out, clone.Extent{Offset: at, Length: u.Offset - at})
			}
			at = max(at, u.End())
		}
		if at < x.End() {
			out = append(out, clone.Extent{Offset: at, Length: x.End() - at})
		}
	}
	return out
}

// merge returns the sorted union of two sorted lists of extents, in
// order; hydrated copes with overlaps.
func merge(a, b []clone.Extent) []clone.Extent {
	out := make([]clone.Extent, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || (len(a) > 0 && a[0].Offset <= b[0].Offset) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// hydrated returns the parts of the first size bytes that are not in
// unhydrated (sorted, as UnhydratedExtents returns them).
func hydrated(unhydrated []clone.Extent, size uint64) []clone.Extent {
	out := []clone.Extent{}
	var at uint64
	for _, e := range unhydrated {
		if e.Offset >= size {
			break
		}
		if e.Offset > at {
			out = append(out, clone.Extent{Offset: at, Length: e.Offset - at})
		}
		at = max(at, e.End())
	}
	if at < size {
		out = append(out, clone.Extent{Offset: at, Length: size - at})
	}
	return out
}
