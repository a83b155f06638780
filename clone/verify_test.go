package clone

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomBytes returns size seeded random bytes.
func randomBytes(size int) []byte {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

// writePair writes two identical files of size random bytes in dir.
func writePair(t testing.TB, dir string, size int) (string, string, []byte) {
	t.Helper()
	data := randomBytes(size)
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	require.NoError(t, os.WriteFile(a, data, 0o600))
	require.NoError(t, os.WriteFile(b, data, 0o600))
	return a, b, data
}

// pair returns two readers over copies of the same random bytes; change
// the returned b slice to make them differ.
func pair(size int) (io.ReaderAt, io.ReaderAt, []byte) {
	a := randomBytes(size)
	b := append([]byte(nil), a...)
	return bytes.NewReader(a), bytes.NewReader(b), b
}

func compare(a, b io.ReaderAt, extents []Extent, o VerifyOptions) (VerifyResult, error) {
	return Compare(context.Background(), "a", a, "b", b, extents, o)
}

func TestCompareEqualOverExtents(t *testing.T) {
	a, b, _ := pair(5 << 20)
	extents := []Extent{{Offset: 0, Length: 1<<20 + 4096}, {Offset: 3 << 20, Length: 2 << 20}}
	var calls []uint64
	res, err := compare(a, b, extents, VerifyOptions{ChunkSize: 1 << 20, OnProgress: func(done, total uint64) {
		calls = append(calls, done)
		assert.Equal(t, uint64(3<<20+4096), total)
	}})
	require.NoError(t, err)
	assert.True(t, res.Equal())
	assert.Equal(t, uint64(3<<20+4096), res.Compared)
	assert.Equal(t, uint64(5<<20), res.Next)
	assert.Equal(t, []uint64{1 << 20, 1<<20 + 4096, 2<<20 + 4096, 3<<20 + 4096}, calls)
}

func TestCompareReportsDifferences(t *testing.T) {
	a, b, bb := pair(4 << 20)
	bb[10] ^= 0xff                        // sector 0
	copy(bb[1<<20-4:], "XXXXXXXX")        // sectors 2047 and 2048: two chunks, one range
	copy(bb[2<<20:], make([]byte, 3*512)) // three whole sectors
	bb[3<<20+100] ^= 1                    // outside the extents: not seen
	bb[4<<20-1] ^= 1                      // the very last byte
	extents := []Extent{{Offset: 0, Length: 3 << 20}, {Offset: 3<<20 + 4096, Length: 1<<20 - 4096}}
	res, err := compare(a, b, extents, VerifyOptions{ChunkSize: 1 << 20})
	require.ErrorIs(t, err, ErrMismatch)
	var me *MismatchError
	require.True(t, errors.As(err, &me))
	assert.Equal(t, res, me.Result)
	assert.Contains(t, err.Error(), "verify a against b")
	assert.Contains(t, err.Error(), "the first bytes 0-511 (512B)")
	assert.Equal(t, []Extent{
		{Offset: 0, Length: 512},
		{Offset: 1<<20 - 512, Length: 1024},
		{Offset: 2 << 20, Length: 3 * 512},
		{Offset: 4<<20 - 512, Length: 512},
	}, res.Mismatches)
	assert.Equal(t, uint64(7*512), res.MismatchedBytes)
	assert.Equal(t, uint64(4<<20-4096), res.Compared)

	// MaxMismatches limits the list, not the count.
	res, err = compare(a, b, extents, VerifyOptions{MaxMismatches: 2})
	require.ErrorIs(t, err, ErrMismatch)
	assert.Len(t, res.Mismatches, 2)
	assert.Equal(t, uint64(7*512), res.MismatchedBytes)
}

func TestComparePacesToRate(t *testing.T) {
	a, b, _ := pair(4 << 20)
	now := time.Unix(1000, 0)
	var slept time.Duration
	o := VerifyOptions{
		ChunkSize: 1 << 20,
		Rate:      2 * MiB,
		Now:       func() time.Time { return now },
		Sleep:     func(_ context.Context, d time.Duration) { slept += d; now = now.Add(d) },
	}
	res, err := compare(a, b, []Extent{{Offset: 0, Length: 4 << 20}}, o)
	require.NoError(t, err)
	// Reading takes no time on this clock: the pace alone makes the time,
	// half a second before each chunk after the first.
	assert.Equal(t, 1500*time.Millisecond, slept)
	assert.Equal(t, 1500*time.Millisecond, res.Duration)

	slept = 0
	o.Rate = Unlimited
	_, err = compare(a, b, []Extent{{Offset: 0, Length: 4 << 20}}, o)
	require.NoError(t, err)
	assert.Zero(t, slept)
}

// failingReader fails every read that touches byte bad.
type failingReader struct {
	io.ReaderAt
	bad int64
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off <= f.bad && f.bad < off+int64(len(p)) {
		return 0, errors.New("input/output error")
	}
	return f.ReaderAt.ReadAt(p, off)
}

func TestCompareStopsOnReadErrors(t *testing.T) {
	a, b, _ := pair(3 << 20)
	res, err := compare(a, failingReader{b, 2<<20 + 5}, []Extent{{Offset: 0, Length: 3 << 20}}, VerifyOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "verify a against b: at byte 2097152: input/output error")
	assert.Equal(t, uint64(2<<20), res.Compared)
	assert.Equal(t, uint64(2<<20), res.Next, "a rerun resumes at the chunk that failed (Trim)")

	// A device shorter than the extents is a short read, not a match.
	short := bytes.NewReader(randomBytes(1 << 20))
	_, err = compare(a, short, []Extent{{Offset: 0, Length: 2 << 20}}, VerifyOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "short read")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Compare(ctx, "a", a, "b", b, []Extent{{Offset: 0, Length: 1 << 20}}, VerifyOptions{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestVerifyFiles(t *testing.T) {
	dir := t.TempDir()
	a, b, data := writePair(t, dir, 3<<20)
	if f, err := openDirect(a); err != nil {
		t.Skipf("the file system of %s refuses O_DIRECT: %v", dir, err)
	} else {
		f.Close()
	}
	res, err := Verify(context.Background(), a, b, []Extent{{Offset: 0, Length: 3 << 20}}, VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, uint64(3<<20), res.Compared)

	data[1<<20+700] ^= 1
	require.NoError(t, os.WriteFile(b, data, 0o600))
	res, err = Verify(context.Background(), a, b, []Extent{{Offset: 1 << 20, Length: 4096}}, VerifyOptions{})
	require.ErrorIs(t, err, ErrMismatch)
	assert.Equal(t, []Extent{{Offset: 1<<20 + 512, Length: 512}}, res.Mismatches)

	for _, c := range []struct {
		extents []Extent
		want    string
	}{
		{[]Extent{{Offset: 100, Length: 4096}}, "is not aligned"},
		{[]Extent{{Offset: 0, Length: 4<<20 - 512}}, "ends past the shorter device"},
		{[]Extent{{Offset: 4096, Length: 4096}, {Offset: 0, Length: 4096}}, "overlaps or precedes"},
	} {
		_, err = Verify(context.Background(), a, b, c.extents, VerifyOptions{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
	}
	_, err = Verify(context.Background(), a, filepath.Join(dir, "missing"), []Extent{{Offset: 0, Length: 4096}}, VerifyOptions{})
	require.ErrorIs(t, err, os.ErrNotExist)
}

// signallingReader reports every read's offset on reads.
type signallingReader struct {
	io.ReaderAt
	reads chan int64
}

func (s signallingReader) ReadAt(p []byte, off int64) (int, error) {
	s.reads <- off
	return s.ReaderAt.ReadAt(p, off)
}

// TestCompareReadsAhead: the next chunk is read while one is compared (a
// comparison that waited for each read left both devices idle meanwhile:
// verify ran at a third of a raw read in the lab).
func TestCompareReadsAhead(t *testing.T) {
	a, b, _ := pair(3 << 20)
	reads := make(chan int64, 16)
	ahead := make(chan bool, 3)
	o := VerifyOptions{ChunkSize: 1 << 20, OnProgress: func(done, _ uint64) {
		// Called once a chunk is compared: the next chunk's read must
		// already have begun, without waiting for this callback.
		if done == 3<<20 {
			return
		}
		deadline := time.After(5 * time.Second)
		for {
			select {
			case off := <-reads:
				if uint64(off) == done {
					ahead <- true
					return
				}
			case <-deadline:
				ahead <- false
				return
			}
		}
	}}
	res, err := compare(signallingReader{a, reads}, b, []Extent{{Offset: 0, Length: 3 << 20}}, o)
	require.NoError(t, err)
	assert.Equal(t, uint64(3<<20), res.Compared)
	close(ahead)
	n := 0
	for ok := range ahead {
		assert.True(t, ok, "the next chunk was not being read while one was compared")
		n++
	}
	assert.Equal(t, 2, n)
}

// TestCompareResumes: a comparison stopped by a read error resumes at its
// Next with From; the two results add up to one whole comparison, and
// OnChunk saw every chunk's result on the way.
func TestCompareResumes(t *testing.T) {
	a, b, bb := pair(4 << 20)
	bb[512] ^= 1
	bb[3<<20+1024] ^= 1
	extents := []Extent{{Offset: 0, Length: 4 << 20}}
	var seen []uint64
	o := VerifyOptions{ChunkSize: 1 << 20, OnChunk: func(r VerifyResult) { seen = append(seen, r.Next) }}
	first, err := compare(a, failingReader{b, 2<<20 + 5}, extents, o)
	require.Error(t, err)
	require.Equal(t, uint64(2<<20), first.Next)
	assert.Equal(t, []uint64{1 << 20, 2 << 20}, seen)
	assert.Equal(t, []Extent{{Offset: 512, Length: 512}}, first.Mismatches)

	o.From = first.Next
	second, err := compare(a, b, extents, o)
	require.ErrorIs(t, err, ErrMismatch)
	assert.Equal(t, uint64(2<<20), second.Total, "only what is left is asked for")
	assert.Equal(t, uint64(2<<20), second.Compared)
	assert.Equal(t, []Extent{{Offset: 3<<20 + 1024, Length: 512}}, second.Mismatches)
	assert.Equal(t, []uint64{1 << 20, 2 << 20, 3 << 20, 4 << 20}, seen)
}
