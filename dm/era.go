package dm

import (
	"fmt"
	"strconv"
	"strings"
)

// Era is dm-era: a linear mapping of Origin that records in which era each
// block was last written, for change tracking.
//
// Table args: <metadata dev> <origin dev> <block size>
type Era struct {
	// Metadata holds the era metadata.
	Metadata string
	// Origin carries the data.
	Origin string
	// BlockSize is the tracking granularity: a power of two, a multiple of 8.
	BlockSize Sectors
}

// Type returns "era".
func (Era) Type() string { return "era" }

// Args renders "<metadata> <origin> <block size>".
func (e Era) Args() string { return fmt.Sprintf("%s %s %d", e.Metadata, e.Origin, e.BlockSize) }

// Validate checks the devices and block size (dm-era-target.c
// valid_block_size and its power-of-two check).
func (e Era) Validate(Sectors) error {
	if err := checkDevice("era metadata", e.Metadata); err != nil {
		return err
	}
	if err := checkDevice("era origin", e.Origin); err != nil {
		return err
	}
	if !isPowerOfTwo(uint64(e.BlockSize)) || e.BlockSize < 8 {
		return fmt.Errorf("era block size %d sectors: must be a power of two, at least 8", e.BlockSize)
	}
	return nil
}

func (e Era) sizeNeeds(length Sectors) []sizeNeed {
	return []sizeNeed{{role: "era origin", device: e.Origin, min: length}}
}

// Era messages; none takes arguments.
const (
	// MsgEraCheckpoint possibly moves to a new era: read the status after it.
	MsgEraCheckpoint = "checkpoint"
	// MsgEraTakeMetadataSnap holds a metadata root for userspace to read.
	MsgEraTakeMetadataSnap = "take_metadata_snap"
	// MsgEraDropMetadataSnap releases it.
	MsgEraDropMetadataSnap = "drop_metadata_snap"
)

// EraStatus is a parsed era status line:
//
//	<metadata block size> <#used metadata blocks>/<#total metadata blocks>
//	<current era> <held metadata root | '-'>
//
// or "Error" when the metadata could not be read.
type EraStatus struct {
	// Error is set when the kernel reported "Error".
	Error bool
	// MetadataBlockSize is in sectors.
	MetadataBlockSize Sectors
	// MetadataUsed and MetadataTotal count metadata blocks.
	MetadataUsed, MetadataTotal uint64
	// Era is the current era.
	Era uint32
	// HeldRoot is the held metadata root block, valid when HasHeldRoot.
	HeldRoot uint64
	// HasHeldRoot is false when the kernel printed "-".
	HasHeldRoot bool
}

// ParseEraStatus parses an era status (params, or a whole
// "start length era params" line).
func ParseEraStatus(line string) (EraStatus, error) {
	f := strings.Fields(line)
	if len(f) >= 3 && f[2] == "era" {
		f = f[3:]
	}
	if len(f) == 1 && f[0] == "Error" {
		return EraStatus{Error: true}, nil
	}
	if len(f) != 4 {
		return EraStatus{}, fmt.Errorf("dm: parse era status %q: want 4 fields", line)
	}
	var s EraStatus
	bs, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return EraStatus{}, fmt.Errorf("dm: parse era status %q: block size: %w", line, err)
	}
	s.MetadataBlockSize = Sectors(bs)
	if s.MetadataUsed, s.MetadataTotal, err = parseRatio(f[1]); err != nil {
		return EraStatus{}, fmt.Errorf("dm: parse era status %q: %w", line, err)
	}
	era, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return EraStatus{}, fmt.Errorf("dm: parse era status %q: era: %w", line, err)
	}
	s.Era = uint32(era)
	if f[3] != "-" {
		if s.HeldRoot, err = strconv.ParseUint(f[3], 10, 64); err != nil {
			return EraStatus{}, fmt.Errorf("dm: parse era status %q: held root: %w", line, err)
		}
		s.HasHeldRoot = true
	}
	return s, nil
}
