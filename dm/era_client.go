package dm

import (
	"context"
	"fmt"
	"io"
)

// EraCheckpoint asks the era device to start a new era and returns the
// era now current: writes from here on are marked with it (the kernel
// may keep the era it had, so the status is read back).
func (c *Client) EraCheckpoint(ctx context.Context, name string) (uint32, error) {
	if err := c.Message(ctx, name, 0, MsgEraCheckpoint); err != nil {
		return 0, err
	}
	st, err := c.EraStatus(ctx, name)
	if err != nil {
		return 0, err
	}
	if st.Error {
		return 0, fmt.Errorf("dm: era %s: the target reports a metadata error", name)
	}
	return st.Era, nil
}

// EraWrittenSince returns the blocks of the era device written in era
// since or later, up to now: it takes a metadata snapshot (which ends the
// current era), reads it from metadata (the table's metadata device, see
// OpenEraMetadata) and drops it. A snapshot still held on entry is one a
// crashed earlier call left: it is dropped first, since it misses every
// write after it was taken.
func (c *Client) EraWrittenSince(ctx context.Context, name string, metadata io.ReaderAt, since uint32) (EraBlocks, error) {
	st, err := c.EraStatus(ctx, name)
	if err != nil {
		return EraBlocks{}, err
	}
	if st.Error {
		return EraBlocks{}, fmt.Errorf("dm: era %s: the target reports a metadata error", name)
	}
	if since > st.Era {
		return EraBlocks{}, fmt.Errorf("dm: era %s: era %d has not begun (the current era is %d)", name, since, st.Era)
	}
	if st.HasHeldRoot {
		if err := c.Message(ctx, name, 0, MsgEraDropMetadataSnap); err != nil {
			return EraBlocks{}, fmt.Errorf("dm: era %s: drop the stale snapshot at block %d: %w", name, st.HeldRoot, err)
		}
	}
	if err := c.Message(ctx, name, 0, MsgEraTakeMetadataSnap); err != nil {
		return EraBlocks{}, err
	}
	set, err := c.readHeldEra(ctx, name, metadata, since)
	if derr := c.Message(ctx, name, 0, MsgEraDropMetadataSnap); derr != nil && err == nil {
		err = derr
	}
	return set, err
}

// readHeldEra reads the snapshot the era device holds now.
func (c *Client) readHeldEra(ctx context.Context, name string, metadata io.ReaderAt, since uint32) (EraBlocks, error) {
	st, err := c.EraStatus(ctx, name)
	if err != nil {
		return EraBlocks{}, err
	}
	if !st.HasHeldRoot {
		return EraBlocks{}, fmt.Errorf("dm: era %s: no metadata snapshot held after take_metadata_snap", name)
	}
	return ReadEraWrittenSince(metadata, st.HeldRoot, since)
}
