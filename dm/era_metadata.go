package dm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// EraMetadataBlockSize is the size of every dm-era metadata block
// (DM_ERA_METADATA_BLOCK_SIZE): block n lives at byte n*4096.
const EraMetadataBlockSize = 4096

// Checksum salts of drivers/md: dm-era-target.c (superblock),
// persistent-data/dm-btree-spine.c (btree nodes), dm-array.c (array blocks).
const (
	eraSuperblockMagic  = 2126579579
	eraSuperblockXor    = 146538381
	btreeNodeXor        = 121107
	arrayBlockXor       = 595846735
	btreeInternalFlag   = 1
	btreeLeafFlag       = 2
	btreeHeaderSize     = 32
	arrayBlockHeader    = 24
	eraMaxBtreeDepth    = 16
	eraWritesetDiskSize = 12
)

// ErrBadEraMetadata: a block of the era metadata is not what dm-era wrote
// (wrong magic, checksum or location, or an impossible btree).
var ErrBadEraMetadata = errors.New("bad dm-era metadata")

// EraSuperblock is what lunferry reads of a dm-era superblock (struct
// superblock_disk, packed, little endian):
//
//	0 csum u32, 4 flags u32, 8 blocknr u64, 16 uuid [16]u8, 32 magic u64,
//	40 version u32, 44 metadata space map root [128]u8,
//	172 data block size u32, 176 metadata block size u32, 180 nr blocks u32,
//	184 current era u32, 188 current writeset {nr bits u32, root u64},
//	200 writeset tree root u64, 208 era array root u64, 216 metadata snap u64
//
// In a metadata snapshot only the two roots are meaningful (the kernel
// says so); the sizes are those of the commit it was copied from.
type EraSuperblock struct {
	// DataBlockSize is the era block size of the table.
	DataBlockSize Sectors
	// NrBlocks is how many era blocks the origin has.
	NrBlocks uint32
	// CurrentEra is the era at the commit.
	CurrentEra uint32
	// WritesetTreeRoot holds the archived writesets keyed by era.
	WritesetTreeRoot uint64
	// EraArrayRoot is the array of each block's last digested era.
	EraArrayRoot uint64
	// MetadataSnap is the held snapshot's block, 0 for none.
	MetadataSnap uint64
}

// eraChecksum is dm_bm_checksum: crc32c seeded with ~0 and not inverted
// at the end (the kernel's crc32c), xored with a per-kind salt, over a
// block from byte 4 on.
func eraChecksum(block []byte, salt uint32) uint32 {
	return ^crc32.Checksum(block[4:], castagnoli) ^ salt
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkEraBlock verifies a metadata block's checksum and the location it
// says it lives at (blocknr, at byte offset at).
func checkEraBlock(block []byte, loc uint64, salt uint32, at int, kind string) error {
	le := binary.LittleEndian
	if got := le.Uint64(block[at:]); got != loc {
		return fmt.Errorf("dm: era metadata: %s at block %d says it is block %d: %w", kind, loc, got, ErrBadEraMetadata)
	}
	if want, got := eraChecksum(block, salt), le.Uint32(block); got != want {
		return fmt.Errorf("dm: era metadata: %s at block %d: checksum %#x, want %#x: %w", kind, loc, got, want, ErrBadEraMetadata)
	}
	return nil
}

// ParseEraSuperblock parses the era superblock (block 0, or a held
// metadata snapshot) found at block loc.
func ParseEraSuperblock(block []byte, loc uint64) (EraSuperblock, error) {
	if len(block) != EraMetadataBlockSize {
		return EraSuperblock{}, fmt.Errorf("dm: era superblock: %d bytes, want %d: %w", len(block), EraMetadataBlockSize, ErrBadEraMetadata)
	}
	le := binary.LittleEndian
	if m := le.Uint64(block[32:]); m != eraSuperblockMagic {
		return EraSuperblock{}, fmt.Errorf("dm: era superblock at block %d: magic %d, want %d: %w", loc, m, eraSuperblockMagic, ErrBadEraMetadata)
	}
	if err := checkEraBlock(block, loc, eraSuperblockXor, 8, "superblock"); err != nil {
		return EraSuperblock{}, err
	}
	if v := le.Uint32(block[40:]); v != 1 {
		return EraSuperblock{}, fmt.Errorf("dm: era superblock at block %d: metadata version %d, only 1 is known: %w", loc, v, ErrBadEraMetadata)
	}
	return EraSuperblock{
		DataBlockSize:    Sectors(le.Uint32(block[172:])),
		NrBlocks:         le.Uint32(block[180:]),
		CurrentEra:       le.Uint32(block[184:]),
		WritesetTreeRoot: le.Uint64(block[200:]),
		EraArrayRoot:     le.Uint64(block[208:]),
		MetadataSnap:     le.Uint64(block[216:]),
	}, nil
}

// eraReader reads metadata blocks, checking each one it returns.
type eraReader struct {
	r    io.ReaderAt
	seen int
}

// block reads block loc into a fresh slice.
func (e *eraReader) block(loc uint64) ([]byte, error) {
	// Every block is read at most once per walk; a loop in a corrupt
	// tree would read more than the device holds.
	if e.seen++; e.seen > 1<<24 {
		return nil, fmt.Errorf("dm: era metadata: too many blocks read, the trees loop: %w", ErrBadEraMetadata)
	}
	b := make([]byte, EraMetadataBlockSize)
	if _, err := e.r.ReadAt(b, int64(loc)*EraMetadataBlockSize); err != nil {
		return nil, fmt.Errorf("dm: era metadata: read block %d: %w", loc, err)
	}
	return b, nil
}

// walkBtree calls leaf for every key and value of the btree at root, in
// key order (struct node_header, then max_entries keys, then values).
func (e *eraReader) walkBtree(root uint64, valueSize int, depth int, leaf func(key uint64, value []byte) error) error {
	if depth > eraMaxBtreeDepth {
		return fmt.Errorf("dm: era metadata: btree deeper than %d at block %d: %w", eraMaxBtreeDepth, root, ErrBadEraMetadata)
	}
	b, err := e.block(root)
	if err != nil {
		return err
	}
	if err := checkEraBlock(b, root, btreeNodeXor, 8, "btree node"); err != nil {
		return err
	}
	le := binary.LittleEndian
	flags, n, max, vs := le.Uint32(b[4:]), int(le.Uint32(b[16:])), int(le.Uint32(b[20:])), int(le.Uint32(b[24:]))
	internal := flags&btreeInternalFlag != 0
	want := valueSize
	if internal {
		want = 8
	}
	if vs != want || n > max || btreeHeaderSize+max*(8+vs) > len(b) || (!internal && flags&btreeLeafFlag == 0) {
		return fmt.Errorf("dm: era metadata: btree node %d: flags %d, %d/%d entries of %d bytes (want %d): %w", root, flags, n, max, vs, want, ErrBadEraMetadata)
	}
	values := btreeHeaderSize + max*8
	for i := 0; i < n; i++ {
		key, v := le.Uint64(b[btreeHeaderSize+8*i:]), b[values+i*vs:values+(i+1)*vs]
		if internal {
			err = e.walkBtree(le.Uint64(v), valueSize, depth+1, leaf)
		} else {
			err = leaf(key, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// walkArray calls fn for every entry of the dm_array at root: a btree of
// array block numbers, each array block (struct array_block) holding
// max_entries values after its header.
func (e *eraReader) walkArray(root uint64, valueSize int, fn func(index uint64, value []byte) error) error {
	return e.walkBtree(root, 8, 0, func(key uint64, v []byte) error {
		loc := binary.LittleEndian.Uint64(v)
		b, err := e.block(loc)
		if err != nil {
			return err
		}
		if err := checkEraBlock(b, loc, arrayBlockXor, 16, "array block"); err != nil {
			return err
		}
		le := binary.LittleEndian
		max, n, vs := int(le.Uint32(b[4:])), int(le.Uint32(b[8:])), int(le.Uint32(b[12:]))
		if vs != valueSize || n > max || arrayBlockHeader+max*vs > len(b) {
			return fmt.Errorf("dm: era metadata: array block %d: %d/%d entries of %d bytes (want %d): %w", loc, n, max, vs, valueSize, ErrBadEraMetadata)
		}
		for i := 0; i < n; i++ {
			if err := fn(key*uint64(max)+uint64(i), b[arrayBlockHeader+i*vs:arrayBlockHeader+(i+1)*vs]); err != nil {
				return err
			}
		}
		return nil
	})
}
