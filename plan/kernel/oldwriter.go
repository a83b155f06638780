package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/initiator"
)

// oldWriter implements plan.OldWriter with clone.CopyBack, clearing the
// old LUN disk's read-only flag for the copy alone.
type oldWriter struct{ c *initiator.Client }

func (w oldWriter) CopyBack(ctx context.Context, src, old string, extents []clone.Extent, rate clone.Rate) (n uint64, err error) {
	if w.c == nil {
		return 0, fmt.Errorf("initiator unavailable: cannot make %s writable", old)
	}
	if err := w.c.SetReadWrite(old); err != nil {
		return 0, err
	}
	defer func() {
		if rerr := w.c.SetReadOnly(old); rerr != nil {
			err = errors.Join(err, fmt.Errorf("set %s read-only again: %w", old, rerr))
		}
	}()
	return clone.CopyBack(ctx, src, old, extents, clone.CopyOptions{Rate: rate})
}
