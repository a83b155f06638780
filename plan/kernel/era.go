package kernel

import (
	"context"
	"fmt"
	"slices"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/internal/loop"
	"github.com/lunferry/lunferry/plan"
)

// eras adapts dm.Client's era operations to plan.EraDevices, over the
// mapper's client.
type eras struct{ m *mapper }

func (e eras) Create(ctx context.Context, name string, sectors uint64, t dm.Era) (string, error) {
	c, err := e.m.client()
	if err != nil {
		return "", err
	}
	if dev, ok, err := e.m.Lookup(ctx, name); err != nil || ok {
		return dev, err
	}
	info, err := c.Create(ctx, name, uuidFor(name), dm.Table{{Length: dm.Sectors(sectors), Target: t}})
	if err != nil {
		return "", err
	}
	return e.m.node(info), nil
}

// Superblock reads block 0 with O_DIRECT: dm-era writes its metadata below
// the page cache.
func (eras) Superblock(ctx context.Context, dev string) error {
	b, err := loop.ReadHead(dev, dm.EraMetadataBlockSize)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
		return fmt.Errorf("era metadata %s: %w", dev, plan.ErrNoEraSuperblock)
	}
	_, err = dm.ParseEraSuperblock(b, 0)
	return err
}

func (e eras) Checkpoint(ctx context.Context, name string) (uint32, error) {
	c, err := e.m.client()
	if err != nil {
		return 0, err
	}
	return c.EraCheckpoint(ctx, name)
}

func (e eras) WrittenSince(ctx context.Context, name, meta string, since uint32) ([]clone.Extent, error) {
	c, err := e.m.client()
	if err != nil {
		return nil, err
	}
	f, err := dm.OpenEraMetadata(meta)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	set, err := c.EraWrittenSince(ctx, name, f, since)
	if err != nil {
		return nil, err
	}
	return eraExtents(set), nil
}

// eraExtents turns a set of era blocks into byte ranges.
func eraExtents(set dm.EraBlocks) []clone.Extent {
	bs := uint64(set.BlockSize) * 512
	var out []clone.Extent
	for _, r := range set.Runs() {
		out = append(out, clone.Extent{Offset: uint64(r.First) * bs, Length: uint64(r.Count) * bs})
	}
	return out
}
