package dm

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eraKernelDevice builds an era device of 4096 blocks of 4 KiB (five era
// array blocks) over a loop device and returns its name, node and the
// metadata loop device.
func eraKernelDevice(t *testing.T, c *Client) (string, string, string) {
	meta, mDev, _ := loop(t, 1<<20, 0)
	_, oDev, _ := loop(t, 16<<20, 0)
	name, uuid := names("era")
	mustCreate(t, c, name, uuid, Table{{Length: 32768, Target: Era{Metadata: mDev, Origin: oDev, BlockSize: 8}}})
	dev, err := c.DevicePath(name)
	require.NoError(t, err)
	return name, dev, meta
}

// writeEraBlocks writes one 4 KiB block at each of blocks, synced.
func writeEraBlocks(t *testing.T, dev string, blocks ...uint32) {
	t.Helper()
	for _, b := range blocks {
		require.NoError(t, writeDevice(dev, int64(b)*4096, bytes.Repeat([]byte{byte(b) | 1}, 4096)))
	}
}

func eraBlockList(s EraBlocks) []uint32 {
	var l []uint32
	for b := uint32(0); b < s.NrBlocks; b++ {
		if s.Has(b) {
			l = append(l, b)
		}
	}
	return l
}

// TestKernelEraWrittenSince: the blocks read from the era metadata as
// written since an era are exactly those written after its checkpoint,
// across later eras (archived writesets and, once digested, the era array).
func TestKernelEraWrittenSince(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	name, dev, meta := eraKernelDevice(t, c)
	st, err := c.EraStatus(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, Sectors(8), st.MetadataBlockSize)
	assert.False(t, st.HasHeldRoot)

	writeEraBlocks(t, dev, 1, 100, 3)
	e1, err := c.EraCheckpoint(ctx, name)
	require.NoError(t, err)
	require.Greater(t, e1, st.Era)
	writeEraBlocks(t, dev, 3, 1017, 1018, 4095)
	e2, err := c.EraCheckpoint(ctx, name)
	require.NoError(t, err)
	require.Greater(t, e2, e1)
	writeEraBlocks(t, dev, 2036, 2037, 2038, 7)

	md, err := OpenEraMetadata(meta)
	require.NoError(t, err)
	defer md.Close()
	got, err := c.EraWrittenSince(ctx, name, md, e1)
	require.NoError(t, err)
	assert.Equal(t, []uint32{3, 7, 1017, 1018, 2036, 2037, 2038, 4095}, eraBlockList(got))
	assert.Equal(t, Sectors(8), got.BlockSize)
	assert.Equal(t, uint32(4096), got.NrBlocks)
	got, err = c.EraWrittenSince(ctx, name, md, e2)
	require.NoError(t, err)
	assert.Equal(t, []uint32{7, 2036, 2037, 2038}, eraBlockList(got))
	assert.Equal(t, []EraRun{{7, 1}, {2036, 3}}, got.Runs())

	// Nothing written since the last snapshot ended its era.
	st, err = c.EraStatus(ctx, name)
	require.NoError(t, err)
	assert.False(t, st.HasHeldRoot, "the snapshot is dropped")
	got, err = c.EraWrittenSince(ctx, name, md, st.Era)
	require.NoError(t, err)
	assert.Zero(t, got.Count())

	// A snapshot a crash left held is dropped and taken again.
	require.NoError(t, c.Message(ctx, name, 0, MsgEraTakeMetadataSnap))
	writeEraBlocks(t, dev, 9)
	got, err = c.EraWrittenSince(ctx, name, md, e2)
	require.NoError(t, err)
	assert.Equal(t, []uint32{7, 9, 2036, 2037, 2038}, eraBlockList(got))

	_, err = c.EraWrittenSince(ctx, name, md, st.Era+100)
	require.Error(t, err)
}

// TestKernelEraCaptureMetadata prints a held era metadata snapshot
// ("CAPTURE era-metadata <base64 gzip>"), the source of
// testdata/era-metadata-6.1.img.gz, and the blocks it must yield.
func TestKernelEraCaptureMetadata(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	name, dev, meta := eraKernelDevice(t, c)
	writeEraBlocks(t, dev, 0, 5)
	e1, err := c.EraCheckpoint(ctx, name)
	require.NoError(t, err)
	writeEraBlocks(t, dev, 5, 64, 65, 1020)
	e2, err := c.EraCheckpoint(ctx, name)
	require.NoError(t, err)
	writeEraBlocks(t, dev, 2, 4000)
	require.NoError(t, c.Message(ctx, name, 0, MsgEraTakeMetadataSnap))
	t.Cleanup(func() { _ = c.Message(ctx, name, 0, MsgEraDropMetadataSnap) })
	st, err := c.EraStatus(ctx, name)
	require.NoError(t, err)
	require.True(t, st.HasHeldRoot)
	img := readDirect(t, meta, 1<<20)

	got, err := ReadEraWrittenSince(bytes.NewReader(img), st.HeldRoot, e1)
	require.NoError(t, err)
	assert.Equal(t, []uint32{2, 5, 64, 65, 1020, 4000}, eraBlockList(got))
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, err = w.Write(img)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	t.Logf("CAPTURE era-metadata held=%d e1=%d e2=%d status=%q", st.HeldRoot, e1, e2, statusLine(t, c, name))
	t.Logf("CAPTURE era-metadata-image %s", base64.StdEncoding.EncodeToString(z.Bytes()))
}

func statusLine(t *testing.T, c *Client, name string) string {
	lines, err := c.Status(kctx(t), name)
	require.NoError(t, err)
	require.Len(t, lines, 1)
	return lines[0].String()
}
