package dm

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eraGolden is dm-era metadata from the lab's 6.1 kernel
// (TestKernelEraCaptureMetadata): 4096 blocks of 8 sectors; blocks 0 and 5
// written in era 1, then 5, 64, 65 and 1020 in era 2, then 2 and 4000 in
// era 3; a snapshot held at block 74 (status "8 21/256 4 74").
const (
	eraGoldenHeld = 74
	eraGoldenE1   = 2
	eraGoldenE2   = 3
)

func eraGolden(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("testdata/era-metadata-6.1.img.gz")
	require.NoError(t, err)
	defer f.Close()
	z, err := gzip.NewReader(f)
	require.NoError(t, err)
	img, err := io.ReadAll(z)
	require.NoError(t, err)
	require.Len(t, img, 1<<20)
	return img
}

func TestParseEraSuperblockGolden(t *testing.T) {
	img := eraGolden(t)
	live, err := ParseEraSuperblock(img[:EraMetadataBlockSize], 0)
	require.NoError(t, err)
	assert.Equal(t, Sectors(8), live.DataBlockSize)
	assert.Equal(t, uint32(4096), live.NrBlocks)
	assert.Equal(t, uint32(4), live.CurrentEra)
	assert.Equal(t, uint64(eraGoldenHeld), live.MetadataSnap)

	snap, err := ParseEraSuperblock(img[eraGoldenHeld*EraMetadataBlockSize:][:EraMetadataBlockSize], eraGoldenHeld)
	require.NoError(t, err)
	assert.Equal(t, uint32(4096), snap.NrBlocks)

	// The block the snapshot lives at is part of its checksum.
	_, err = ParseEraSuperblock(img[:EraMetadataBlockSize], 1)
	require.ErrorIs(t, err, ErrBadEraMetadata)
	_, err = ParseEraSuperblock(img[EraMetadataBlockSize:2*EraMetadataBlockSize], 1)
	require.ErrorIs(t, err, ErrBadEraMetadata)
}

func TestReadEraWrittenSinceGolden(t *testing.T) {
	img := eraGolden(t)
	for since, want := range map[uint32][]uint32{
		1:               {0, 2, 5, 64, 65, 1020, 4000},
		eraGoldenE1:     {2, 5, 64, 65, 1020, 4000},
		eraGoldenE2:     {2, 4000},
		eraGoldenE2 + 1: nil,
	} {
		got, err := ReadEraWrittenSince(bytes.NewReader(img), eraGoldenHeld, since)
		require.NoError(t, err, "since %d", since)
		assert.Equal(t, want, eraBlockList(got), "since %d", since)
		assert.Equal(t, len(want), got.Count())
		assert.Equal(t, Sectors(8), got.BlockSize)
	}
	got, err := ReadEraWrittenSince(bytes.NewReader(img), eraGoldenHeld, eraGoldenE1)
	require.NoError(t, err)
	assert.Equal(t, []EraRun{{2, 1}, {5, 1}, {64, 2}, {1020, 1}, {4000, 1}}, got.Runs())

	_, err = ReadEraWrittenSince(bytes.NewReader(img), eraGoldenHeld, 0)
	require.ErrorContains(t, err, "eras start at 1")
	_, err = ReadEraWrittenSince(bytes.NewReader(img), 3, 1)
	require.ErrorIs(t, err, ErrBadEraMetadata, "not a superblock")
}

// TestReadEraWrittenSinceCorrupt: a flipped byte in any block the walk
// reads fails its checksum instead of yielding wrong blocks.
func TestReadEraWrittenSinceCorrupt(t *testing.T) {
	img := eraGolden(t)
	var read []int64
	_, err := ReadEraWrittenSince(recordingReader{bytes.NewReader(img), &read}, eraGoldenHeld, 1)
	require.NoError(t, err)
	require.Greater(t, len(read), 4, "superblock, two btrees, bitsets, array blocks")
	for _, off := range read {
		bad := append([]byte(nil), img...)
		bad[off+100] ^= 0x40
		_, err := ReadEraWrittenSince(bytes.NewReader(bad), eraGoldenHeld, 1)
		require.ErrorIs(t, err, ErrBadEraMetadata, "block %d", off/EraMetadataBlockSize)
	}
	_, err = ReadEraWrittenSince(bytes.NewReader(img[:eraGoldenHeld*EraMetadataBlockSize]), eraGoldenHeld, 1)
	require.ErrorIs(t, err, io.EOF, "a metadata device cut short")
}

type recordingReader struct {
	r    io.ReaderAt
	offs *[]int64
}

func (r recordingReader) ReadAt(p []byte, off int64) (int, error) {
	*r.offs = append(*r.offs, off)
	return r.r.ReadAt(p, off)
}

func TestEraBlocksRuns(t *testing.T) {
	s := newEraBlocks(8, 130)
	for _, b := range []uint64{0, 1, 2, 63, 64, 65, 129, 130, 500} {
		s.add(b)
	}
	assert.Equal(t, []EraRun{{0, 3}, {63, 3}, {129, 1}}, s.Runs())
	assert.Equal(t, 7, s.Count())
	assert.False(t, s.Has(130))
}
