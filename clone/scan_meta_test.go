package clone

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"
)

// metaImage builds dm-clone metadata the way the kernel lays it out: a
// superblock in block 0, a btree of array blocks holding the region bitmap
// (an internal node over leaves when leaves > 1).
type metaImage struct {
	blocks [][]byte
}

func (m *metaImage) alloc() (uint64, []byte) {
	b := make([]byte, metaBlockSize)
	m.blocks = append(m.blocks, b)
	return uint64(len(m.blocks) - 1), b
}

func seal(b []byte, xor uint32) {
	binary.LittleEndian.PutUint32(b, ^crc32.Checksum(b[4:], castagnoli)^xor)
}

// node writes a btree node of the given flags with keys and values.
func (m *metaImage) node(flags uint32, keys, vals []uint64) uint64 {
	n, b := m.alloc()
	le := binary.LittleEndian
	const max = 126 // (4096-32)/(8+8) rounded down to a multiple of 3, as the kernel does
	le.PutUint32(b[4:], flags)
	le.PutUint64(b[8:], n)
	le.PutUint32(b[16:], uint32(len(keys)))
	le.PutUint32(b[20:], max)
	le.PutUint32(b[24:], 8)
	for i := range keys {
		le.PutUint64(b[nodeHeaderSize+8*i:], keys[i])
		le.PutUint64(b[nodeHeaderSize+8*max+8*i:], vals[i])
	}
	seal(b, nodeCsumXor)
	return n
}

// build lays out a bitmap of nregions regions, hydrated as set says, with
// leafKeys array blocks per leaf.
func build(t *testing.T, regionSectors, targetSectors uint64, hydrated func(r uint64) bool, leafKeys int) []byte {
	t.Helper()
	m := &metaImage{}
	_, sb := m.alloc()
	nregions := (targetSectors + regionSectors - 1) / regionSectors
	nwords := (nregions + 63) / 64
	perBlock := uint64((metaBlockSize - arrayHeaderSize) / 8)
	le := binary.LittleEndian
	var keys, vals []uint64
	for k := uint64(0); k*perBlock < nwords; k++ {
		n, b := m.alloc()
		cnt := min(perBlock, nwords-k*perBlock)
		le.PutUint32(b[4:], uint32(perBlock))
		le.PutUint32(b[8:], uint32(cnt))
		le.PutUint32(b[12:], 8)
		le.PutUint64(b[16:], n)
		for i := range cnt {
			var w uint64
			for bit := range uint64(64) {
				if r := (k*perBlock+i)*64 + bit; r < nregions && hydrated(r) {
					w |= 1 << bit
				}
			}
			le.PutUint64(b[arrayHeaderSize+8*i:], w)
		}
		seal(b, arrayCsumXor)
		keys, vals = append(keys, k), append(vals, n)
	}
	var root uint64
	if len(keys) <= leafKeys {
		root = m.node(nodeLeaf, keys, vals)
	} else {
		var ik, iv []uint64
		for i := 0; i < len(keys); i += leafKeys {
			j := min(i+leafKeys, len(keys))
			ik, iv = append(ik, keys[i]), append(iv, m.node(nodeLeaf, keys[i:j], vals[i:j]))
		}
		root = m.node(nodeInternal, ik, iv)
	}
	le.PutUint64(sb[32:], 0x8af27f64)
	le.PutUint32(sb[40:], 1)
	le.PutUint64(sb[172:], regionSectors)
	le.PutUint64(sb[180:], targetSectors)
	le.PutUint64(sb[sbBitsetRoot:], root)
	seal(sb, sbCsumXor)
	return bytes.Join(m.blocks, nil)
}

func TestUnhydratedExtents(t *testing.T) {
	// 100000 regions of 64 KiB (4 array blocks, two leaves under an
	// internal node); the last region is half a region long.
	const region = 128
	target := uint64(100000*region - 64)
	bad := func(r uint64) bool { return r == 0 || r >= 40000 && r < 40016 || r == 65000 || r == 99999 }
	img := build(t, region, target, func(r uint64) bool { return !bad(r) }, 2)
	got, err := UnhydratedExtents(bytes.NewReader(img))
	require.NoError(t, err)
	rb := uint64(region * 512)
	require.Equal(t, []Extent{
		{Offset: 0, Length: rb},
		{Offset: 40000 * rb, Length: 16 * rb},
		{Offset: 65000 * rb, Length: rb},
		{Offset: 99999 * rb, Length: rb / 2},
	}, got)

	img = build(t, 8, 8*300, func(uint64) bool { return true }, 2)
	got, err = UnhydratedExtents(bytes.NewReader(img))
	require.NoError(t, err)
	require.Empty(t, got, "fully hydrated")
}

func TestUnhydratedExtentsRefusesDamage(t *testing.T) {
	img := build(t, 128, 128*1000, func(r uint64) bool { return r%2 == 0 }, 2)
	for _, blk := range []int{0, 1, 2} {
		bad := bytes.Clone(img)
		bad[blk*metaBlockSize+100] ^= 1
		_, err := UnhydratedExtents(bytes.NewReader(bad))
		require.ErrorIs(t, err, ErrBadCloneMetadata, "block %d damaged", blk)
	}
	_, err := UnhydratedExtents(bytes.NewReader(img[:metaBlockSize]))
	require.Error(t, err, "blocks missing")
}
