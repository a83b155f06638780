package clone

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/lunferry/lunferry/dm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writePair writes two identical files of size random bytes in dir.
func writePair(t testing.TB, dir string, size int) (string, string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	require.NoError(t, os.WriteFile(a, data, 0o600))
	require.NoError(t, os.WriteFile(b, data, 0o600))
	return a, b, data
}

func TestVerifyEqual(t *testing.T) {
	size := 5<<20 + 1234 // a tail that is not a whole block
	a, b, _ := writePair(t, t.TempDir(), size)
	var calls int
	res, err := Verify(context.Background(), a, b, VerifyOptions{ChunkSize: 1 << 20, OnProgress: func(done, total int64) {
		calls++
		assert.Equal(t, int64(size), total)
	}})
	require.NoError(t, err)
	assert.True(t, res.Equal())
	assert.Equal(t, int64(size), res.Compared)
	assert.Equal(t, 6, calls)
	assert.Positive(t, res.Throughput())
	t.Logf("direct reads: a=%v b=%v", res.DirectA, res.DirectB)
}

func TestVerifyReportsDifferences(t *testing.T) {
	a, b, _ := writePair(t, t.TempDir(), 3<<20)
	writeDev(t, b, 10, []byte{0xff ^ 0})                 // sector 0
	writeDev(t, b, 1<<20-4, []byte("XXXXXXXX"))          // spans sectors 2047 and 2048, and two chunks
	writeDev(t, b, 3<<20-1, []byte{0})                   // the very last byte
	writeDev(t, a, 3<<20-1, []byte{1})                   // make sure it differs
	writeDev(t, b, 2<<20, make([]byte, 3*dm.SectorSize)) // three whole sectors
	res, err := Verify(context.Background(), a, b, VerifyOptions{ChunkSize: 1 << 20})
	require.Error(t, err)
	require.ErrorIs(t, err, ErrMismatch)
	var me *MismatchError
	require.True(t, errors.As(err, &me))
	assert.Contains(t, err.Error(), "the first at offset 0")
	assert.Equal(t, res, me.Result)
	assert.Equal(t, []Mismatch{
		{Offset: 0, Length: 512},
		{Offset: 1<<20 - 512, Length: 512},
		{Offset: 1 << 20, Length: 512},
		{Offset: 2 << 20, Length: 3 * 512},
		{Offset: 3<<20 - 512, Length: 512},
	}, res.Mismatches)
	assert.Equal(t, int64(7*512), res.MismatchedBytes)

	// MaxMismatches limits the list, not the count.
	res, err = Verify(context.Background(), a, b, VerifyOptions{MaxMismatches: 2})
	require.ErrorIs(t, err, ErrMismatch)
	assert.Len(t, res.Mismatches, 2)
	assert.Equal(t, int64(7*512), res.MismatchedBytes)

	// A range that avoids every difference is equal.
	res, err = Verify(context.Background(), a, b, VerifyOptions{Offset: 4096, Length: 1<<20 - 8192})
	require.NoError(t, err)
	assert.Equal(t, int64(1<<20-8192), res.Compared)
}

func TestVerifyUnalignedOffsetReadsBuffered(t *testing.T) {
	a, b, _ := writePair(t, t.TempDir(), 1<<20)
	writeDev(t, b, 1000, []byte{1, 2, 3})
	res, err := Verify(context.Background(), a, b, VerifyOptions{Offset: 100, Length: 2000})
	require.ErrorIs(t, err, ErrMismatch)
	assert.False(t, res.DirectA)
	assert.Equal(t, []Mismatch{{Offset: 100 + 512, Length: 512}}, res.Mismatches, "sectors are counted from Offset")
}

func TestVerifySizeErrors(t *testing.T) {
	dir := t.TempDir()
	a, b, data := writePair(t, dir, 1<<20)
	require.NoError(t, os.WriteFile(b, data[:1<<19], 0o600))
	_, err := Verify(context.Background(), a, b, VerifyOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "fewer than the 1048576 compared")
	// Comparing the shorter one's length works: the new LUN may be larger.
	_, err = Verify(context.Background(), b, a, VerifyOptions{})
	require.NoError(t, err)

	_, err = Verify(context.Background(), a, filepath.Join(dir, "missing"), VerifyOptions{})
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = Verify(context.Background(), a, b, VerifyOptions{Offset: 2 << 20})
	require.Error(t, err)
}

func TestVerifyCancelled(t *testing.T) {
	a, b, _ := writePair(t, t.TempDir(), 2<<20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Verify(ctx, a, b, VerifyOptions{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestVerifyOnTmpfs(t *testing.T) {
	// tmpfs refuses O_DIRECT before Linux 6.6 (the lab's 6.1 kernel test
	// checks the fallback); newer kernels accept it.
	dir := "/dev/shm"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Skip("no /dev/shm here")
	}
	sub, err := os.MkdirTemp(dir, "lunferry-verify-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(sub) })
	a, b, _ := writePair(t, sub, 1<<20+512)
	res, err := Verify(context.Background(), a, b, VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(1<<20+512), res.Compared)
	t.Logf("direct reads on /dev/shm: a=%v b=%v", res.DirectA, res.DirectB)
}
