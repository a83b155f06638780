package plan_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// TestKernelRunHoldsThrottle: the product's loop (Run, 1 s rounds, as
// `lunferry run --interval 1s` runs it) hydrates a volume over iSCSI at
// its throttle, although the arrays (LIO fileio on loopback) copy many
// times faster even with one region in flight.
func TestKernelRunHoldsThrottle(t *testing.T) {
	// 8 s of the target; one region in flight copies several times
	// faster (over 3 MiB/s in the lab).
	const size = 8 * mib
	const target = 1 * clone.MiB
	// measure runs one throttled hydration on a fresh lab and returns
	// its average rate and fastest 3 s span.
	measure := func() (rate, peak float64, took time.Duration) {
		l := newLab(t, size, size)
		ctx := context.Background()
		var err error
		l.p, err = plan.New(plan.Options{StateDir: filepath.Join(l.dir, "state"), LockWait: 10 * time.Second,
			Ports: kernel.Ports(kernel.Options{TickInterval: time.Second}), Log: testLog{t}, PollInterval: 100 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, l.p.SetThrottle(ctx, l.spec.Name, clone.Fixed(target)))
		l.cutover()

		type point struct {
			t     time.Time
			bytes float64
		}
		var mu sync.Mutex
		var pts []point
		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() { cancel(); wg.Wait() }()
		start := time.Now()
		_, err = l.p.Start(ctx, l.spec.Name)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, l.p.Run(runCtx, time.Second, false, func(res []plan.TickResult) {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range res {
					assert.Empty(t, r.Error)
					p := r.Progress
					pts = append(pts, point{time.Now(), float64(p.HydratedRegions * p.RegionSectors * 512)})
				}
			}))
		}()
		for {
			v, err := l.p.Show(ctx, l.spec.Name)
			require.NoError(t, err)
			if v.Step == plan.StepHydrated {
				took = time.Since(start)
				break
			}
			require.Less(t, time.Since(start), 2*time.Minute, "hydration too slow: %+v", v.Progress)
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		wg.Wait()

		rate = float64(size) / took.Seconds()
		// The fastest span of 3 s or more between rounds.
		mu.Lock()
		for i := range pts {
			for j := i + 1; j < len(pts); j++ {
				if d := pts[j].t.Sub(pts[i].t); d >= 3*time.Second {
					peak = max(peak, (pts[j].bytes-pts[i].bytes)/d.Seconds())
					break
				}
			}
		}
		mu.Unlock()
		return rate, peak, took
	}
	// The throttle's contract (clone.Controller): the target on average,
	// plus what its token bucket may save up while the device runs slower
	// than the target (2 s of the target) and spend later. Under emulation
	// a stalled vCPU slows the device and delays the wake-ups that end
	// bursts, so the bucket fills; in 8 s its 2 s are a quarter of the
	// run, and a bound without them failed a throttle that held (CI: 8 MiB
	// in 6.4 s, 1.26 MiB/s, every 3 s span under 1.2 MiB/s). Unthrottled,
	// the tuned settings copy several times faster and fail both bounds.
	const saved = 2 * float64(target)
	within := func(rate, peak float64, took time.Duration) bool {
		return rate >= 0.75*float64(target) &&
			float64(size) <= 1.25*float64(target)*took.Seconds()+saved &&
			peak*3 <= 1.5*float64(target)*3+saved
	}
	// Two tries: a throttle that does not hold fails both.
	var rate, peak float64
	var took time.Duration
	for try := 1; try <= 2; try++ {
		rate, peak, took = measure()
		if within(rate, peak, took) {
			break
		}
		t.Logf("try %d: %.2f MiB/s on average, fastest 3 s span %.2f MiB/s: outside the throttle's bounds", try, rate/mib, peak/mib)
	}
	t.Logf("Run, 8 MiB throttled to %v: hydrated in %v, %.2f MiB/s on average, fastest 3 s span %.2f MiB/s",
		clone.Rate(target), took.Round(time.Millisecond), rate/mib, peak/mib)
	assert.GreaterOrEqual(t, rate, 0.75*float64(target), "average over the hydration: under the throttle")
	assert.LessOrEqual(t, float64(size), 1.25*float64(target)*took.Seconds()+saved,
		"hydrated faster than the throttle allows, even with its saved-up 2 s: %v for %d MiB", took, size/mib)
	assert.LessOrEqual(t, peak*3, 1.5*float64(target)*3+saved, "fastest 3 s span, beyond the saved-up 2 s")
}
