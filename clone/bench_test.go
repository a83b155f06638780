package clone

import (
	"context"
	"testing"
	"time"
)

// steadyDevice completes a fixed number of regions between two status
// reads, at no cost, so the benchmarks measure the controller alone.
type steadyDevice struct {
	p Progress
}

func (d *steadyDevice) Progress(context.Context) (Progress, error) {
	if d.p.HydrationEnabled {
		d.p.HydratedRegions = (d.p.HydratedRegions + 37) % d.p.TotalRegions
	}
	return d.p, nil
}
func (d *steadyDevice) SetHydration(_ context.Context, on bool) error {
	d.p.HydrationEnabled = on
	return nil
}
func (d *steadyDevice) SetThreshold(_ context.Context, n uint) error { d.p.Threshold = n; return nil }
func (d *steadyDevice) SetBatchSize(_ context.Context, n uint) error { d.p.BatchSize = n; return nil }

// BenchmarkControllerStep is the cost of one control step (status read of
// a free device, accounting, decision, messages) with a 30 s rate window.
func BenchmarkControllerStep(b *testing.B) {
	dev := &steadyDevice{p: Progress{TotalRegions: 1 << 40, RegionSize: 128, Threshold: 1, BatchSize: 1}}
	clk := newFakeClock(monday0759)
	sch, err := ParseSchedule("mon-fri 08:00-18:00=50MiB/s; sat,sun=unlimited; *=10MiB/s; tz=UTC")
	if err != nil {
		b.Fatal(err)
	}
	c := NewController(dev, Options{Schedule: sch, Clock: clk, Share: NewBudget(100 * MiB).Join("x")})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Step(ctx); err != nil {
			b.Fatal(err)
		}
		clk.Advance(250 * time.Millisecond)
	}
}

// BenchmarkRegulatorRegulate is the cost per volume of one plan tick.
func BenchmarkRegulatorRegulate(b *testing.B) {
	r := NewRegulator(RegulatorOptions{Budget: NewBudget(200 * MiB)})
	p := Progress{TotalRegions: 1 << 40, RegionSize: 128}
	at := monday0759
	b.ReportAllocs()
	for b.Loop() {
		p.HydratedRegions += 160
		at = at.Add(time.Second)
		_ = r.Regulate("vol1", p, at, 20*MiB)
	}
}

// BenchmarkScheduleRateAt is the cost of looking up the throttle.
func BenchmarkScheduleRateAt(b *testing.B) {
	s, err := ParseSchedule("mon-fri 08:00-18:00=50MiB/s; sat,sun=unlimited; 22:00-06:00=400MiB/s; *=100MiB/s; tz=UTC")
	if err != nil {
		b.Fatal(err)
	}
	t := monday0759
	b.ReportAllocs()
	for b.Loop() {
		t = t.Add(7 * time.Minute)
		_ = s.RateAt(t)
	}
}

// BenchmarkVerify compares two 64 MiB files in b.TempDir() (O_DIRECT where
// the file system allows it); the reported MB/s is per device.
func BenchmarkVerify(b *testing.B) {
	const size = 64 << 20
	x, y, _ := writePair(b, b.TempDir(), size)
	b.SetBytes(size)
	ctx := context.Background()
	var direct bool
	for b.Loop() {
		res, err := Verify(ctx, x, y, VerifyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		direct = res.DirectA
	}
	b.ReportMetric(boolMetric(direct), "direct")
}

// BenchmarkVerifyBuffered is BenchmarkVerify through the page cache.
func BenchmarkVerifyBuffered(b *testing.B) {
	const size = 64 << 20
	x, y, _ := writePair(b, b.TempDir(), size)
	b.SetBytes(size)
	ctx := context.Background()
	for b.Loop() {
		if _, err := Verify(ctx, x, y, VerifyOptions{Buffered: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func boolMetric(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
