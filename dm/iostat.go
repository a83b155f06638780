package dm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// IOCounters are a block device's cumulative completed I/O as the block
// layer accounts it (Documentation/block/stat.rst): on a dm device, the
// I/O submitted to it (the host's, under an export), not what its targets
// do below it (dm-clone's hydration copies).
type IOCounters struct {
	// Requests is reads plus writes completed.
	Requests uint64
	// Busy is the total time those requests took, submission to
	// completion (read ticks plus write ticks).
	Busy time.Duration
}

// IOCounters reads the named device's counters from
// SysRoot/dev/block/MAJ:MIN/stat.
func (c *Client) IOCounters(ctx context.Context, name string) (IOCounters, error) {
	info, err := c.Info(ctx, name)
	if err != nil {
		return IOCounters{}, err
	}
	p := filepath.Join(c.opts.SysRoot, "dev", "block", info.Dev.String(), "stat")
	b, err := os.ReadFile(p)
	if err != nil {
		return IOCounters{}, fmt.Errorf("dm: read I/O counters of %s: %w", name, err)
	}
	n, err := ParseIOCounters(string(b))
	if err != nil {
		return IOCounters{}, fmt.Errorf("dm: %s: %w", p, err)
	}
	return n, nil
}

// ParseIOCounters parses a block device's stat file: reads completed,
// merged, sectors, ticks (ms), then the same four for writes, then more.
func ParseIOCounters(s string) (IOCounters, error) {
	f := strings.Fields(s)
	if len(f) < 8 {
		return IOCounters{}, fmt.Errorf("block stat has %d fields, want at least 8: %q", len(f), s)
	}
	var v [8]uint64
	for i := range v {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return IOCounters{}, fmt.Errorf("block stat field %d %q: %w", i+1, f[i], err)
		}
		v[i] = n
	}
	return IOCounters{Requests: v[0] + v[4], Busy: time.Duration(v[3]+v[7]) * time.Millisecond}, nil
}
