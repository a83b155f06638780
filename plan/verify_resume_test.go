package plan_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

// compareVerifier verifies with clone.Compare over two byte slices, the
// first size bytes of the LUNs; reading the new one fails at failAt (-1:
// never), or the comparison is cancelled once it got there.
type compareVerifier struct {
	fakeVerifier
	old, new []byte
	failAt   int64
	cancel   bool
	froms    []uint64
}

type failAtReader struct {
	io.ReaderAt
	at int64
}

func (r failAtReader) ReadAt(p []byte, off int64) (int, error) {
	if r.at >= 0 && off <= r.at && r.at < off+int64(len(p)) {
		return 0, errors.New("input/output error")
	}
	return r.ReaderAt.ReadAt(p, off)
}

func (c *compareVerifier) Verify(ctx context.Context, old, nw, _ string, _ uint64, _ []clone.Extent, o clone.VerifyOptions) (clone.VerifyResult, error) {
	c.froms = append(c.froms, o.From)
	o.ChunkSize = 1 << 20
	return clone.Compare(ctx, old, bytes.NewReader(c.old), nw, failAtReader{bytes.NewReader(c.new), c.failAt},
		[]clone.Extent{{Offset: 0, Length: uint64(len(c.old))}}, o)
}

// TestVerifyResumesItsCheckpoint: a verify stopped by a read error leaves a
// checkpoint; the next one reads only what is left, and its report covers
// both runs, with the difference the first one found. --restart (and a
// volume that moved on to another step) compare from the start.
func TestVerifyResumesItsCheckpoint(t *testing.T) {
	ctx := context.Background()
	e := hydratedEnv(t)
	data := randomBytes(8 << 20)
	c := &compareVerifier{old: data, new: append([]byte(nil), data...), failAt: 5<<20 + 7}
	c.new[1<<20+512] ^= 0xff // a difference before the stop
	p := e.verifyPlanner(c)

	rep, err := p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.Error(t, err)
	require.NotErrorIs(t, err, clone.ErrMismatch, "stopped by the read error, not finished")
	assert.Equal(t, uint64(5<<20), rep.Result.Next)
	ckpt := filepath.Join(e.dir, "verify", "vol1.json")
	require.FileExists(t, ckpt)

	c.failAt = -1
	rep, err = p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.ErrorIs(t, err, clone.ErrMismatch, "the difference found before the stop still counts")
	assert.Equal(t, []uint64{0, 5 << 20}, c.froms, "the second verify read only what was left")
	assert.Equal(t, uint64(5<<20), rep.ResumedFrom)
	require.NotNil(t, rep.ResumedCheckpoint)
	assert.Equal(t, uint64(8<<20), rep.Result.Compared)
	assert.Equal(t, uint64(8<<20), rep.Result.Total)
	assert.Equal(t, []clone.Extent{{Offset: 1<<20 + 512, Length: 512}}, rep.Result.Mismatches)
	assert.NoFileExists(t, ckpt, "a comparison run to the end leaves no checkpoint")

	// Stopped again; --restart ignores the checkpoint.
	c.new[1<<20+512] ^= 0xff
	c.failAt = 6 << 20
	_, err = p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.Error(t, err)
	c.failAt = -1
	rep, err = p.Verify(ctx, "vol1", plan.VerifyOptions{Restart: true})
	require.NoError(t, err)
	assert.Zero(t, rep.ResumedFrom)
	assert.Equal(t, uint64(0), c.froms[len(c.froms)-1])
	assert.Equal(t, uint64(8<<20), rep.Result.Compared)

	// A checkpoint left at another step (here: while it hydrated) is not
	// resumed, and the report says why.
	c.failAt = 6 << 20
	_, err = p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.Error(t, err)
	b, err := os.ReadFile(ckpt)
	require.NoError(t, err)
	require.Contains(t, string(b), `"step":"hydrated"`)
	require.NoError(t, os.WriteFile(ckpt, bytes.Replace(b, []byte(`"step":"hydrated"`), []byte(`"step":"hydrating"`), 1), 0o600))
	c.failAt = -1
	rep, err = p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err)
	assert.Zero(t, rep.ResumedFrom)
	assert.Equal(t, "the earlier verify stopped at step hydrating, the volume is at hydrated now: compared from the start", rep.CheckpointNote)
	assert.Equal(t, uint64(8<<20), rep.Result.Compared)

	// A checkpoint this lunferry cannot read is not resumed, and said so.
	require.NoError(t, os.WriteFile(ckpt, []byte("{not json"), 0o600))
	rep, err = p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err)
	assert.Zero(t, rep.ResumedFrom)
	assert.Equal(t, "the checkpoint of an earlier verify is not one this lunferry writes: compared from the start", rep.CheckpointNote)
	assert.Equal(t, uint64(8<<20), rep.Result.Compared)

	// A volume removed takes its verify's checkpoint with it.
	c.failAt = 6 << 20
	_, err = p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.Error(t, err)
	require.FileExists(t, ckpt)
	_, err = e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	require.NoError(t, e.p.Remove(ctx, "vol1", false))
	assert.NoFileExists(t, ckpt)
}

// TestVerifyCheckpointSavedOnTheWay: the checkpoint is saved as the
// comparison goes (every 2 s), so a verify killed mid-way, with no chance
// to save, is resumed from its last save.
func TestVerifyCheckpointSavedOnTheWay(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	data := randomBytes(8 << 20)
	c := &compareVerifier{old: data, new: append([]byte(nil), data...), failAt: -1}
	ports := e.k.Ports()
	ports.Verifier = c
	now := time.Unix(1000, 0)
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond,
		Now: func() time.Time { now = now.Add(time.Second); return now }})
	require.NoError(t, err)
	ckpt := filepath.Join(e.dir, "verify", "vol1.json")
	var atKill []byte
	cctx, cancel := context.WithCancel(ctx)
	_, err = p.Verify(cctx, "vol1", plan.VerifyOptions{OnProgress: func(done, _ uint64) {
		if done == 6<<20 {
			// What a SIGKILL here would leave.
			atKill, err = os.ReadFile(ckpt)
			require.NoError(t, err, "no checkpoint saved on the way")
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, os.WriteFile(ckpt, atKill, 0o600))
	rep, err := p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rep.ResumedFrom, uint64(3<<20))
	assert.Less(t, rep.ResumedFrom, uint64(6<<20))
	assert.Equal(t, uint64(8<<20), rep.Result.Compared, "nothing compared twice, nothing left out")
	assert.Equal(t, []uint64{0, rep.ResumedFrom}, c.froms)
}
