package initiator

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Cache is how the kernel sees a disk's cache, from what the logical unit
// reports: a volatile write cache (MODE SENSE caching page WCE=1; the
// block layer sends flushes) and FUA (DPOFUA; writes may carry Force Unit
// Access).
type Cache struct {
	WriteBack bool
	FUA       bool
}

// Cache reads the cache of the disk named name ("sdc") from
// /sys/block/<name>/queue/write_cache ("write back" or "write through")
// and queue/fua ("1" or "0").
func (c *Client) Cache(name string) (Cache, error) {
	q := filepath.Join(c.sysRoot, "block", name, "queue")
	wc, err := os.ReadFile(filepath.Join(q, "write_cache"))
	if err != nil {
		return Cache{}, fmt.Errorf("initiator: cache of %s: %w", name, err)
	}
	fua, err := os.ReadFile(filepath.Join(q, "fua"))
	if err != nil {
		return Cache{}, fmt.Errorf("initiator: cache of %s: %w", name, err)
	}
	return Cache{WriteBack: strings.TrimSpace(string(wc)) == "write back", FUA: strings.TrimSpace(string(fua)) == "1"}, nil
}
