package plan_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

// slicedScanner plays the old LUN's scan: each call looks at one slice of
// the unhydrated regions and finds what bad lists in it.
type slicedScanner struct {
	slices [][]clone.Extent
	calls  []uint64 // the from of each call
	old    []string
}

func (s *slicedScanner) Unreadable(_ context.Context, old, meta string, from uint64, o clone.ScanOptions) (clone.ScanResult, error) {
	s.calls, s.old = append(s.calls, from), append(s.old, old+" "+meta)
	i := len(s.calls) - 1
	res := clone.ScanResult{Unreadable: s.slices[i], Scanned: 1 << 20, Next: uint64(i+1) << 20}
	for _, e := range s.slices[i] {
		res.UnreadableBytes += e.Length
	}
	if i < len(s.slices)-1 {
		res.Stopped = clone.StoppedDeadline
	}
	return res, nil
}

// TestStalledHydrationNamesUnreadableRanges: once hydration stalls, each
// round of `lunferry run` scans a slice of the old LUN's unhydrated
// regions, resuming where the last stopped, once per stall; the ranges
// found are saved and named by the round, status, `status --check` and
// finalize's refusal; a new stall scans afresh.
func TestStalledHydrationNamesUnreadableRanges(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	e := newEnv(t)
	e.k.HydrationStep = 1
	sc := &slicedScanner{slices: [][]clone.Extent{{{Offset: 4096, Length: 512}}, {{Offset: 4608, Length: 1024}, {Offset: 3 << 20, Length: 4096}}}}
	ports := e.k.Ports()
	ports.Scanner = sc
	e.clocked(&now, ports)
	e.add(spec("vol1"))
	e.cutOver()
	_, err := e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	tick := func(d time.Duration) plan.TickResult {
		now = now.Add(d)
		res, err := e.p.Tick(ctx, false)
		require.NoError(t, err)
		return res[0]
	}
	tick(0)
	e.k.HydrationStep = 0
	require.Empty(t, tick(time.Minute).Error)
	require.Empty(t, sc.calls, "no scan before a stall")

	r := tick(5 * time.Minute)
	require.Contains(t, r.Error, "hydration stalled since 2026-12-01T10:00:00Z")
	require.Contains(t, r.Error, "bytes 4096-4607 (512B)", "the first slice's find")
	r = tick(2 * time.Second)
	const named = "the old LUN returns read errors at bytes 4096-5631 (1536B), bytes 3145728-3149823 (4KiB) (5.5KiB in all)"
	require.Contains(t, r.Error, named)
	tick(2 * time.Second)
	require.Equal(t, []uint64{0, 1 << 20}, sc.calls, "the second slice resumes where the first stopped; none after the last")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	for _, o := range v.Objects {
		if o.Kind == plan.ObjMetadata {
			require.Equal(t, v.OldDisk.Path+" "+o.Device, sc.old[0], "the old disk and the metadata device")
		}
	}

	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.NotNil(t, rep.Volumes[0].Unreadable)
	require.True(t, rep.Volumes[0].Unreadable.Done)
	require.ErrorIs(t, rep.Check(), plan.ErrStalled)
	require.ErrorContains(t, rep.Check(), named)
	_, err = e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrNotReady)
	require.ErrorContains(t, err, named)
	require.Contains(t, e.log.String(), "volume vol1: hydration stalled: "+named)

	e.k.HydrationStep = 1
	require.Empty(t, tick(time.Minute).Error)
	rep, err = e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Nil(t, rep.Volumes[0].Unreadable, "progress ends the stall and its report")
	e.k.HydrationStep = 0
	sc.slices = append(sc.slices, nil)
	tick(time.Second)
	r = tick(5 * time.Minute)
	require.Equal(t, uint64(0), sc.calls[2], "a new stall scans afresh")
	require.True(t, strings.Contains(r.Error, "every unhydrated region of the old LUN (1MiB) reads without error"), r.Error)
}
