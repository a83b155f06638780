package clone

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"

	"github.com/lunferry/lunferry/dm"
)

// The parts of dm-clone's on-disk metadata (drivers/md/dm-clone-metadata.c
// and persistent-data/) that UnhydratedExtents reads: 4 KiB blocks; block
// 0 the superblock, whose bitset_root names the root of a dm_array of
// little-endian 64-bit words (bit r%64 of word r/64 set: region r
// hydrated). The array is a btree (keys: array block index, values: the
// array block's location) over array blocks of up to 509 words.
const (
	metaBlockSize = 4096
	// sbBitsetRoot is the offset of bitset_root in superblock_disk (after
	// csum, flags, blocknr, uuid[16], magic, version, the 128-byte space
	// map root, region_size and target_size).
	sbBitsetRoot = 188
	// The checksum seeds of the superblock, btree nodes and array blocks.
	sbCsumXor    = 257649492
	nodeCsumXor  = 121107
	arrayCsumXor = 595846735
	// node_header: csum, flags, blocknr, nr_entries, max_entries,
	// value_size, padding (32 bytes), then keys, then values.
	nodeHeaderSize = 32
	nodeInternal   = 1
	nodeLeaf       = 2
	// array_block: csum, max_entries, nr_entries, value_size, blocknr.
	arrayHeaderSize = 24
	// maxTreeDepth bounds the walk of a damaged tree.
	maxTreeDepth = 8
)

// ErrBadCloneMetadata is wrapped by UnhydratedExtents when a block does
// not check out (a checksum or location mismatch: damaged, or rewritten by
// a commit while it was read: read again).
var ErrBadCloneMetadata = errors.New("clone metadata does not check out")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// UnhydratedExtents reads the region bitmap dm-clone last committed to its
// metadata device meta and returns the byte extents of the volume whose
// regions it records unhydrated, adjacent ones merged. A region hydrated
// since the last commit (dm-clone commits every second) may still be
// listed; a region listed hydrated is hydrated.
func UnhydratedExtents(meta io.ReaderAt) ([]Extent, error) {
	sb, err := readMetaBlock(meta, 0, sbCsumXor)
	if err != nil {
		return nil, err
	}
	hdr, err := dm.ParseCloneSuperblock(sb)
	if err != nil {
		return nil, err
	}
	words := map[uint64][]uint64{}
	root := binary.LittleEndian.Uint64(sb[sbBitsetRoot:])
	if err := walkArrayTree(meta, root, 0, words); err != nil {
		return nil, err
	}
	region, size := uint64(hdr.RegionSize)*dm.SectorSize, uint64(hdr.TargetSize)*dm.SectorSize
	if region == 0 {
		return nil, fmt.Errorf("clone: metadata: region size 0: %w", ErrBadCloneMetadata)
	}
	return unhydrated(words, region, size), nil
}

// readMetaBlock reads block b and checks its checksum (seeded with xor)
// and, but for the superblock, the location it records.
func readMetaBlock(meta io.ReaderAt, b uint64, xor uint32) ([]byte, error) {
	buf := make([]byte, metaBlockSize)
	if _, err := meta.ReadAt(buf, int64(b*metaBlockSize)); err != nil {
		return nil, fmt.Errorf("clone: metadata: read block %d: %w", b, err)
	}
	le := binary.LittleEndian
	if sum := ^crc32.Checksum(buf[4:], castagnoli) ^ xor; sum != le.Uint32(buf) {
		return nil, fmt.Errorf("clone: metadata: block %d: checksum %#x, it records %#x: %w", b, sum, le.Uint32(buf), ErrBadCloneMetadata)
	}
	loc := 8 // node_header.blocknr
	if xor == arrayCsumXor {
		loc = 16 // array_block.blocknr
	}
	if b != 0 && le.Uint64(buf[loc:]) != b {
		return nil, fmt.Errorf("clone: metadata: block %d says it is block %d: %w", b, le.Uint64(buf[loc:]), ErrBadCloneMetadata)
	}
	return buf, nil
}

// walkArrayTree reads the btree node at b and, under it, the array blocks
// into words (keyed by array block index).
func walkArrayTree(meta io.ReaderAt, b uint64, depth int, words map[uint64][]uint64) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("clone: metadata: btree deeper than %d at block %d: %w", maxTreeDepth, b, ErrBadCloneMetadata)
	}
	n, err := readMetaBlock(meta, b, nodeCsumXor)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	flags, nr, max := le.Uint32(n[4:]), uint64(le.Uint32(n[16:])), uint64(le.Uint32(n[20:]))
	if le.Uint32(n[24:]) != 8 || nr > max || nodeHeaderSize+max*16 > metaBlockSize {
		return fmt.Errorf("clone: metadata: btree node %d: %d of %d entries of %d bytes: %w", b, nr, max, le.Uint32(n[24:]), ErrBadCloneMetadata)
	}
	for i := range nr {
		key := le.Uint64(n[nodeHeaderSize+8*i:])
		val := le.Uint64(n[nodeHeaderSize+8*max+8*i:])
		switch {
		case flags&nodeInternal != 0:
			err = walkArrayTree(meta, val, depth+1, words)
		case flags&nodeLeaf != 0:
			words[key], err = readArrayBlock(meta, val)
		default:
			err = fmt.Errorf("clone: metadata: btree node %d: flags %#x: %w", b, flags, ErrBadCloneMetadata)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readArrayBlock returns the words of the array block at b.
func readArrayBlock(meta io.ReaderAt, b uint64) ([]uint64, error) {
	a, err := readMetaBlock(meta, b, arrayCsumXor)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	max, nr, vsize := uint64(le.Uint32(a[4:])), uint64(le.Uint32(a[8:])), le.Uint32(a[12:])
	if vsize != 8 || nr > max || arrayHeaderSize+8*max > metaBlockSize {
		return nil, fmt.Errorf("clone: metadata: array block %d: %d of %d entries of %d bytes: %w", b, nr, max, vsize, ErrBadCloneMetadata)
	}
	w := make([]uint64, max) // entries past nr: zero, unhydrated
	for i := range nr {
		w[i] = le.Uint64(a[arrayHeaderSize+8*i:])
	}
	return w, nil
}

// unhydrated turns the bitmap's words into the byte extents of the
// regions whose bit is clear (a word no array block holds: all clear).
func unhydrated(words map[uint64][]uint64, region, size uint64) []Extent {
	perBlock := uint64((metaBlockSize - arrayHeaderSize) / 8)
	nregions := (size + region - 1) / region
	var out []Extent
	for r := uint64(0); r < nregions; {
		w := r / 64
		var word uint64
		if blk := words[w/perBlock]; w%perBlock < uint64(len(blk)) {
			word = blk[w%perBlock]
		}
		clear := ^word >> (r % 64)
		if clear == 0 {
			r = (w + 1) * 64 // the rest of this word is hydrated
			continue
		}
		r += uint64(bits.TrailingZeros64(clear))
		if r >= nregions {
			break
		}
		e := Extent{Offset: r * region, Length: min(region, size-r*region)}
		if k := len(out); k > 0 && out[k-1].End() == e.Offset {
			out[k-1].Length += e.Length
		} else {
			out = append(out, e)
		}
		r++
	}
	return out
}
