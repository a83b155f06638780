package kernel

import (
	"context"

	"github.com/lunferry/lunferry/clone"
)

// verifier implements plan.Verifier with clone's bitmap reader and Verify.
type verifier struct{}

func (verifier) Verify(ctx context.Context, old, nw, meta string, size uint64, o clone.VerifyOptions) (clone.VerifyResult, error) {
	ext, err := unhydrated(meta)
	if err != nil {
		return clone.VerifyResult{}, err
	}
	return clone.Verify(ctx, old, nw, hydrated(ext, size), o)
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
