package plan_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

// fakeVerifier records what it was asked to compare.
type fakeVerifier struct {
	calls       []string
	size        uint64
	opts        clone.VerifyOptions
	res         clone.VerifyResult
	err         error
	old, nw, md string
	skip        []clone.Extent
	// during runs during the comparison (the host writing meanwhile).
	during func()
	// viewCalls, viewOnly record VerifyHostView's arguments; viewRes,
	// viewErr are its answer and viewDuring runs during it.
	viewCalls  []string
	viewOnly   []clone.Extent
	viewRes    clone.VerifyResult
	viewErr    error
	viewDuring func()
}

func (f *fakeVerifier) VerifyHostView(_ context.Context, nw, view, meta string, only []clone.Extent, _ clone.VerifyOptions) (clone.VerifyResult, error) {
	f.viewCalls = append(f.viewCalls, nw+" "+view+" "+meta)
	f.viewOnly = only
	if f.viewDuring != nil {
		f.viewDuring()
	}
	return f.viewRes, f.viewErr
}

func (f *fakeVerifier) Verify(_ context.Context, old, nw, meta string, size uint64, skip []clone.Extent, o clone.VerifyOptions) (clone.VerifyResult, error) {
	f.calls = append(f.calls, old+" "+nw+" "+meta)
	f.skip = skip
	if f.during != nil {
		f.during()
	}
	f.old, f.nw, f.md, f.size, f.opts = old, nw, meta, size, o
	return f.res, f.err
}

// verifyPlanner is e's planner with f as its verifier.
func (e *env) verifyPlanner(f plan.Verifier) *plan.Planner {
	ports := e.k.Ports()
	ports.Verifier = f
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond})
	require.NoError(e.t, err)
	return p
}

func TestVerifyComparesOldAndNewLUN(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.eraless()
	e.cutOver()
	f := &fakeVerifier{res: clone.VerifyResult{Compared: 1 << 20, Total: 1 << 20}}
	p := e.verifyPlanner(f)

	_, err := p.Verify(ctx, "vol1", plan.VerifyOptions{})
	require.ErrorIs(t, err, plan.ErrHostWrites)
	assert.Contains(t, err.Error(), "pass --host-stopped only if it has not")
	assert.Empty(t, f.calls, "nothing read without the admin's word")

	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	rep, err := p.Verify(ctx, "vol1", plan.VerifyOptions{HostStopped: true, Rate: 5 * clone.MiB})
	require.NoError(t, err)
	v := e.show()
	require.Len(t, f.calls, 1)
	assert.Equal(t, v.OldDisk.Path, f.old)
	assert.Equal(t, v.NewDisk.Path, f.nw)
	assert.NotEmpty(t, f.md)
	assert.Equal(t, uint64(1*gib), f.size, "the volume's size, not the larger new LUN's")
	assert.Equal(t, 5*clone.MiB, f.opts.Rate)
	assert.Equal(t, &plan.VerifyReport{Volume: "vol1", Old: f.old, New: f.nw, Result: f.res}, rep)
	assert.Equal(t, plan.StepHydrated, e.show().Step, "verify sets no step")

	f.res = clone.VerifyResult{Compared: 1 << 20, MismatchedBytes: 512, Mismatches: []clone.Extent{{Offset: 4096, Length: 512}}}
	f.err = &clone.MismatchError{A: f.old, B: f.nw, Result: f.res}
	rep, err = p.Verify(ctx, "vol1", plan.VerifyOptions{HostStopped: true})
	require.ErrorIs(t, err, clone.ErrMismatch)
	assert.Equal(t, f.res, rep.Result, "the report comes with the mismatch")
}

func TestVerifyRefusesOutsideTheClone(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	f := &fakeVerifier{}
	p := e.verifyPlanner(f)
	_, err := p.Verify(ctx, "vol1", plan.VerifyOptions{HostStopped: true})
	require.ErrorIs(t, err, plan.ErrWrongStep)

	e.cutOver()
	e.k.Reboot()
	_, err = p.Verify(ctx, "vol1", plan.VerifyOptions{HostStopped: true})
	require.ErrorIs(t, err, plan.ErrDrift, "objects gone from the kernel are reported, not read")

	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	_, err = p.Verify(ctx, "vol1", plan.VerifyOptions{HostStopped: true})
	require.ErrorIs(t, err, plan.ErrWrongStep)
	assert.Contains(t, err.Error(), "finalize detached the old LUN")
	assert.Empty(t, f.calls)

	_, err = e.p.Verify(ctx, "vol1", plan.VerifyOptions{HostStopped: true})
	require.Error(t, err, "no verifier port")
	assert.False(t, errors.Is(err, clone.ErrMismatch))
}

// TestFinalizeVerified: finalize --verify reads only a volume recorded
// hydrated, finalizes nothing on a difference, and finalizes after a clean
// verify; a finalized volume's rerun needs no verify.
func TestFinalizeVerified(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	f := &fakeVerifier{res: clone.VerifyResult{Compared: 1 << 20, Total: 1 << 20}}
	p := e.verifyPlanner(f)
	_, err := e.p.Start(ctx, "vol1")
	require.NoError(t, err)

	_, _, err = p.FinalizeVerified(ctx, "vol1", plan.VerifyOptions{})
	require.ErrorIs(t, err, plan.ErrNotReady)
	assert.Contains(t, err.Error(), "still hydrating")
	assert.Empty(t, f.calls, "nothing read before the copy is whole")

	e.hydrate("vol1")
	f.res = clone.VerifyResult{Compared: 1 << 20, MismatchedBytes: 512, Mismatches: []clone.Extent{{Offset: 4096, Length: 512}}}
	f.err = &clone.MismatchError{A: "old", B: "new", Result: f.res}
	_, rep, err := p.FinalizeVerified(ctx, "vol1", plan.VerifyOptions{})
	require.ErrorIs(t, err, clone.ErrMismatch)
	require.NotNil(t, rep)
	assert.Equal(t, f.res, rep.Result)
	assert.Equal(t, plan.StepHydrated, e.show().Step, "a difference finalizes nothing")
	assert.NotNil(t, e.k.Device(plan.DMName("vol1")).Clone, "still the clone")

	f.res, f.err = clone.VerifyResult{Compared: 1 << 20, Total: 1 << 20}, nil
	v, rep, err := p.FinalizeVerified(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err)
	require.NotNil(t, rep)
	assert.Equal(t, plan.StepFinalized, v.Step)
	assert.Len(t, f.calls, 2)

	v, rep, err = p.FinalizeVerified(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err, "the rerun of a finished finalize")
	assert.Nil(t, rep)
	assert.Equal(t, plan.StepFinalized, v.Step)
	assert.Len(t, f.calls, 2, "no verify once the old LUN is detached")
}
