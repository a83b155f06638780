package clone

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lunferry/lunferry/dm"
)

// BenchmarkControllerDecide is the cost of one control step (accounting,
// decision, messages) for a device that completes a fixed number of
// regions between two samples, with the throttle looked up each time.
func BenchmarkControllerDecide(b *testing.B) {
	st := dm.CloneStatus{TotalRegions: 1 << 40, RegionSize: 128, HydrationThreshold: 1, HydrationBatchSize: 1, MetadataMode: "rw"}
	sch, err := ParseSchedule("mon-fri 08:00-18:00=50MiB/s; sat,sun=unlimited; *=10MiB/s; tz=UTC")
	if err != nil {
		b.Fatal(err)
	}
	c := NewController(Options{})
	at := monday0759
	b.ReportAllocs()
	for b.Loop() {
		st.HydratedRegions = (st.HydratedRegions + 37) % st.TotalRegions
		_ = c.Decide(st, at, sch.RateAt(at))
		at = at.Add(250 * time.Millisecond)
	}
}

// BenchmarkRegulatorRegulate is the cost per volume of one plan tick.
func BenchmarkRegulatorRegulate(b *testing.B) {
	r := NewRegulator(RegulatorOptions{Budget: NewBudget(200 * MiB)})
	st := dm.CloneStatus{TotalRegions: 1 << 40, RegionSize: 128, MetadataMode: "rw"}
	at := monday0759
	b.ReportAllocs()
	for b.Loop() {
		st.HydratedRegions += 160
		at = at.Add(time.Second)
		_ = r.Regulate("vol1", st, at, 20*MiB)
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

// BenchmarkVerify compares two 64 MiB files in b.TempDir() with O_DIRECT
// reads; the reported MB/s is per device.
func BenchmarkVerify(b *testing.B) {
	const size = 64 << 20
	x, y, _ := writePair(b, b.TempDir(), size)
	b.SetBytes(size)
	ctx := context.Background()
	for b.Loop() {
		if _, err := Verify(ctx, x, y, []Extent{{Offset: 0, Length: size}}, VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawReadPair is BenchmarkVerify's limit: the same two files
// read in parallel with O_DIRECT, 1 MiB at a time into one reused aligned
// buffer each, nothing compared; MB/s per device.
func BenchmarkRawReadPair(b *testing.B) {
	const size = 64 << 20
	x, y, _ := writePair(b, b.TempDir(), size)
	b.SetBytes(size)
	read := func(path string) error {
		f, err := openDirect(path)
		if err != nil {
			return err
		}
		defer f.Close()
		buf := alignedBuffer(1 << 20)
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := f.ReadAt(buf, off); err != nil {
				return err
			}
		}
		return nil
	}
	for b.Loop() {
		errY := make(chan error, 1)
		go func() { errY <- read(y) }()
		if err := errors.Join(read(x), <-errY); err != nil {
			b.Fatal(err)
		}
	}
}
