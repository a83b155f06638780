package dm

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
)

// EraBlocks is a set of era blocks of an origin (block n covers sectors
// n*BlockSize to (n+1)*BlockSize).
type EraBlocks struct {
	// BlockSize is the era table's block size.
	BlockSize Sectors
	// NrBlocks is how many era blocks the origin has.
	NrBlocks uint32
	words    []uint64
}

// EraRun is a run of consecutive era blocks.
type EraRun struct {
	// First is the first block of the run.
	First uint32
	// Count is how many blocks it holds.
	Count uint32
}

func newEraBlocks(blockSize Sectors, n uint32) EraBlocks {
	return EraBlocks{BlockSize: blockSize, NrBlocks: n, words: make([]uint64, (uint64(n)+63)/64)}
}

func (s *EraBlocks) add(b uint64) {
	if b < uint64(s.NrBlocks) {
		s.words[b/64] |= 1 << (b % 64)
	}
}

// Has reports whether block b is in the set.
func (s EraBlocks) Has(b uint32) bool {
	return b < s.NrBlocks && s.words[b/64]&(1<<(b%64)) != 0
}

// Count returns how many blocks the set holds.
func (s EraBlocks) Count() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// Runs returns the set as runs of consecutive blocks, in order.
func (s EraBlocks) Runs() []EraRun {
	var runs []EraRun
	for b := uint32(0); b < s.NrBlocks; b++ {
		if !s.Has(b) {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].First+runs[n-1].Count == b {
			runs[n-1].Count++
		} else {
			runs = append(runs, EraRun{First: b, Count: 1})
		}
	}
	return runs
}

// ReadEraWrittenSince reads, from era metadata held at block snap (the
// HeldRoot of an era status after take_metadata_snap), which blocks were
// written in era since or later. A block counts when an archived writeset
// of such an era marks it, or when the era array holds such an era for it
// (the kernel digests writesets into the array in the background, so a
// snapshot may hold a block in either or both). The snapshot covers every
// write completed before take_metadata_snap, which ends the era it was
// taken in.
func ReadEraWrittenSince(r io.ReaderAt, snap uint64, since uint32) (EraBlocks, error) {
	if since == 0 {
		return EraBlocks{}, fmt.Errorf("dm: era written since 0: era 0 is what the era array holds for blocks never written; eras start at 1")
	}
	e := &eraReader{r: r}
	b, err := e.block(snap)
	if err != nil {
		return EraBlocks{}, err
	}
	sb, err := ParseEraSuperblock(b, snap)
	if err != nil {
		return EraBlocks{}, err
	}
	set := newEraBlocks(sb.DataBlockSize, sb.NrBlocks)
	le := binary.LittleEndian
	err = e.walkBtree(sb.WritesetTreeRoot, eraWritesetDiskSize, 0, func(era uint64, v []byte) error {
		if era < uint64(since) {
			return nil
		}
		nrBits := uint64(le.Uint32(v))
		return e.walkArray(le.Uint64(v[4:]), 8, func(i uint64, w []byte) error {
			for word := le.Uint64(w); word != 0; word &= word - 1 {
				if b := i*64 + uint64(bits.TrailingZeros64(word)); b < nrBits {
					set.add(b)
				}
			}
			return nil
		})
	})
	if err != nil {
		return EraBlocks{}, fmt.Errorf("%w (writeset tree of snapshot %d)", err, snap)
	}
	err = e.walkArray(sb.EraArrayRoot, 4, func(i uint64, v []byte) error {
		if le.Uint32(v) >= since {
			set.add(i)
		}
		return nil
	})
	if err != nil {
		return EraBlocks{}, fmt.Errorf("%w (era array of snapshot %d)", err, snap)
	}
	return set, nil
}
