package dm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// CloneSuperblockSize is the size of dm-clone's metadata superblock, block
// 0 of its metadata device (DM_CLONE_METADATA_BLOCK_SIZE).
const CloneSuperblockSize = 4096

// cloneSuperblockMagic is SUPERBLOCK_MAGIC of drivers/md/dm-clone-metadata.c.
const cloneSuperblockMagic = 0x8af27f64

// ErrNoCloneSuperblock: the metadata device's first block is all zeroes:
// dm-clone formats it (every region unhydrated) when a table is loaded.
var ErrNoCloneSuperblock = errors.New("no dm-clone superblock (block 0 is all zeroes)")

// ErrBadCloneSuperblock: block 0 is neither zeroes nor a dm-clone
// superblock.
var ErrBadCloneSuperblock = errors.New("not a dm-clone superblock")

// CloneSuperblock is the part of dm-clone's on-disk superblock (struct
// superblock_disk, little endian) that says whose metadata it is:
//
//	0 csum u32, 4 flags u32, 8 blocknr u64, 16 uuid [16]u8, 32 magic u64,
//	40 version u32, 44 metadata space map root [128]u8, 172 region size u64,
//	180 target size u64, 188 bitset root u64
type CloneSuperblock struct {
	// Version is the metadata format version (1 on 6.1).
	Version uint32
	// RegionSize is the region size the metadata was made for.
	RegionSize Sectors
	// TargetSize is the length of the clone device it was made for.
	TargetSize Sectors
}

// ParseCloneSuperblock reads block 0 of a dm-clone metadata device. It
// returns ErrNoCloneSuperblock for a block of zeroes (never loaded, or
// cleared) and ErrBadCloneSuperblock for anything else that is not one.
// The checksum is the kernel's to verify.
func ParseCloneSuperblock(b []byte) (CloneSuperblock, error) {
	if len(b) < 196 {
		return CloneSuperblock{}, fmt.Errorf("dm: clone superblock: %d bytes, want %d: %w", len(b), CloneSuperblockSize, ErrBadCloneSuperblock)
	}
	zero := true
	for _, c := range b {
		if c != 0 {
			zero = false
			break
		}
	}
	if zero {
		return CloneSuperblock{}, ErrNoCloneSuperblock
	}
	le := binary.LittleEndian
	if m := le.Uint64(b[32:]); m != cloneSuperblockMagic {
		return CloneSuperblock{}, fmt.Errorf("dm: clone superblock: magic %#x, want %#x: %w", m, cloneSuperblockMagic, ErrBadCloneSuperblock)
	}
	if n := le.Uint64(b[8:]); n != 0 {
		return CloneSuperblock{}, fmt.Errorf("dm: clone superblock: it says it is block %d, not 0: %w", n, ErrBadCloneSuperblock)
	}
	return CloneSuperblock{
		Version:    le.Uint32(b[40:]),
		RegionSize: Sectors(le.Uint64(b[172:])),
		TargetSize: Sectors(le.Uint64(b[180:])),
	}, nil
}
