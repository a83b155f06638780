package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/lunferry/lunferry/plan"
)

// verifyRate measures `migrate verify` of a hydrated volume with the host
// logged in and idle against a raw read of the same two LUNs through the
// same sessions (two dd O_DIRECT 1 MiB in parallel, as verify reads both),
// interleaved, the order alternating with the repetition.
func (g *Guest) verifyRate(ctx context.Context) error {
	state := filepath.Join(g.dir, "state-verify")
	sp, err := g.spec("vf", g.cfg.Arrays["old"], g.cfg.Arrays["new"], 0, "")
	if err != nil {
		return err
	}
	if err := g.cutover(ctx, state, sp); err != nil {
		return err
	}
	s := startSampler(sp.Name, 100*time.Millisecond)
	if _, err := g.lf(ctx, state, "migrate", "start", sp.Name); err != nil {
		s.halt()
		return err
	}
	err = s.waitHydrated(ctx, 30*time.Minute)
	s.halt()
	if err != nil {
		return err
	}
	// A first verify, not counted, says which disks it compares (and
	// warms both paths as the raw read's first run would be).
	first, _, err := g.verifyOnce(ctx, state, sp.Name)
	if err != nil {
		return err
	}
	var compare, wall, raw []float64
	for rep := 0; rep < g.P.Reps; rep++ {
		for k := 0; k < 2; k++ {
			if (k+rep)%2 == 0 {
				r, took, err := g.verifyOnce(ctx, state, sp.Name)
				if err != nil {
					return err
				}
				compare = append(compare, float64(r.Result.Compared)/r.Result.Duration.Seconds())
				wall = append(wall, float64(r.Result.Compared)/took.Seconds())
				continue
			}
			rate, err := rawReadBoth(ctx, first.Old, first.New, g.P.LUNBytes)
			if err != nil {
				return err
			}
			raw = append(raw, rate)
		}
		fmt.Fprintf(g.out, "bench: verify %d: compare %.1f MiB/s (command %.1f MiB/s), raw read of both %.1f MiB/s per LUN\n",
			rep, compare[rep]/(1<<20), wall[rep]/(1<<20), raw[rep]/(1<<20))
	}
	f := RatioFigure("verify-raw-read", "verify rate / raw read of both LUNs",
		fmt.Sprintf("`migrate verify` of a hydrated %d MiB volume (era layer, host logged in and idle), bytes compared per LUN / the comparison's time, vs two dd O_DIRECT 1 MiB reading the old and the new LUN in parallel through the same sessions", g.P.LUNBytes>>20),
		Reported(), compare, raw)
	f.Note = "the whole command (start, kernel checks, era snapshot, comparison) reached " + fmtSummary(Summarize(Ratios(wall, raw))) + " of the raw read"
	g.figure(f)
	return g.retire(ctx, state, sp, false)
}

// verifyOnce runs `migrate verify --json` and returns its report and the
// command's wall time; any difference is an error (the copy must be
// clean) as is a comparison of less than the whole LUN.
func (g *Guest) verifyOnce(ctx context.Context, state, name string) (plan.VerifyReport, time.Duration, error) {
	start := time.Now()
	out, err := g.lf(ctx, state, "--json", "migrate", "verify", name)
	took := time.Since(start)
	if err != nil {
		return plan.VerifyReport{}, took, err
	}
	var r plan.VerifyReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, took, fmt.Errorf("bench: verify --json: %w: %q", err, out)
	}
	if r.Result.Compared != uint64(g.P.LUNBytes) || r.Result.MismatchedBytes != 0 || r.Result.Duration <= 0 {
		return r, took, fmt.Errorf("bench: verify of a hydrated %d-byte volume compared %d bytes, %d differing, in %s",
			g.P.LUNBytes, r.Result.Compared, r.Result.MismatchedBytes, r.Result.Duration)
	}
	return r, took, nil
}

// rawReadBoth reads size bytes of both disks in parallel, O_DIRECT 1 MiB,
// and returns the rate per disk (bytes/s, over the slower one's time).
func rawReadBoth(ctx context.Context, a, b string, size int64) (float64, error) {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := time.Now()
	for i, dev := range []string{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.CommandContext(ctx, "dd", "if="+dev, "of=/dev/null", "bs=1M", "iflag=direct",
				fmt.Sprintf("count=%d", size>>20)).CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("bench: dd %s: %w: %s", dev, err, out)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for _, e := range errs {
		if e != nil {
			return 0, e
		}
	}
	return float64(size) / took.Seconds(), nil
}
