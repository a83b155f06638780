package kernel

import (
	"context"
	"errors"
	"time"

	"github.com/lunferry/lunferry/clone"
)

const (
	// metaRetries is how often the clone's bitmap is read again when a
	// block does not check out (a commit rewrote it under the read).
	metaRetries = 3
	// minReadWait is the least time a scan waits for one read of the old
	// LUN before it calls the array unresponsive.
	minReadWait = 2 * time.Second
	// metaReadWait bounds one read of the (local) metadata device.
	metaReadWait = 10 * time.Second
)

// scanner implements plan.Scanner with clone's bitmap reader and Scan,
// both devices opened read-only with O_DIRECT.
type scanner struct{}

func (scanner) Unreadable(ctx context.Context, old, meta string, from uint64, o clone.ScanOptions) (clone.ScanResult, error) {
	ext, err := unhydrated(meta)
	if err != nil {
		return clone.ScanResult{}, err
	}
	wait := minReadWait
	if !o.Deadline.IsZero() {
		wait = max(wait, time.Until(o.Deadline))
	}
	r, err := clone.OpenDirect(old, wait)
	if err != nil {
		return clone.ScanResult{}, err
	}
	defer r.Close()
	return clone.Scan(ctx, r, clone.Trim(ext, from), o), nil
}

// unhydrated reads the extents the clone's committed bitmap on meta
// records unhydrated.
func unhydrated(meta string) ([]clone.Extent, error) {
	m, err := clone.OpenDirect(meta, metaReadWait)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	for i := 1; ; i++ {
		ext, err := clone.UnhydratedExtents(m)
		if !errors.Is(err, clone.ErrBadCloneMetadata) || i == metaRetries {
			return ext, err
		}
	}
}
