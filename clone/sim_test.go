package clone

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/dm"
	"github.com/stretchr/testify/require"
)

// fakeClock is the simulated time, advanced by the tests.
type fakeClock struct{ t time.Time }

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (f *fakeClock) Now() time.Time { return f.t }

func (f *fakeClock) Advance(d time.Duration) { f.t = f.t.Add(d) }

// simDevice models a dm-clone device whose copy speed follows the kernel's
// rules: at most threshold regions in flight, copies of min(batch,
// threshold) regions, each taking a fixed latency plus its size over the
// bandwidth; background copying idles while host I/O is in flight; copies
// in flight finish after disable_hydration.
type simDevice struct {
	clock *fakeClock
	at    time.Time

	regionSectors uint64
	total         uint64
	hydrated      float64

	enabled   bool
	threshold uint
	batch     uint

	// bw is the device bandwidth in bytes/s at a time (0 = stalled).
	bw func(time.Time) float64
	// latency is the fixed cost of one copy request.
	latency time.Duration
	// hostBusy is the fraction of time host I/O keeps hydration idle.
	hostBusy func(time.Time) float64

	messages []string
}

func newSimDevice(clock *fakeClock, regionSectors uint64, size uint64, bw func(time.Time) float64) *simDevice {
	rb := regionSectors * dm.SectorSize
	return &simDevice{
		clock:         clock,
		at:            clock.Now(),
		regionSectors: regionSectors,
		total:         (size + rb - 1) / rb,
		enabled:       false, // created with no_hydration, as the plan does
		threshold:     1,     // kernel defaults
		batch:         1,
		bw:            bw,
		latency:       2 * time.Millisecond,
		hostBusy:      func(time.Time) float64 { return 0 },
	}
}

func constBW(v float64) func(time.Time) float64 { return func(time.Time) float64 { return v } }

// speed is the copy rate in bytes/s at time t with the current settings.
func (s *simDevice) speed(t time.Time) float64 {
	if !s.enabled || s.threshold == 0 {
		return 0
	}
	bw := s.bw(t)
	if bw <= 0 {
		return 0
	}
	rb := float64(s.regionSectors * dm.SectorSize)
	copyRegions := s.batch
	if copyRegions < 1 {
		copyRegions = 1
	}
	if copyRegions > s.threshold {
		copyRegions = s.threshold
	}
	perCopy := s.latency.Seconds() + float64(copyRegions)*rb/bw
	r := float64(s.threshold) * rb / perCopy
	if r > bw {
		r = bw
	}
	return r * (1 - s.hostBusy(t))
}

// advance integrates progress up to the clock's now in 10 ms steps.
func (s *simDevice) advance() {
	now := s.clock.Now()
	rb := float64(s.regionSectors * dm.SectorSize)
	for s.at.Before(now) {
		step := now.Sub(s.at)
		if step > 10*time.Millisecond {
			step = 10 * time.Millisecond
		}
		s.hydrated += s.speed(s.at) * step.Seconds() / rb
		s.at = s.at.Add(step)
	}
	if s.hydrated > float64(s.total) {
		s.hydrated = float64(s.total)
	}
}

// status is the device's dm-clone status now, as dm.Client.CloneStatus
// reads it.
func (s *simDevice) status() dm.CloneStatus {
	s.advance()
	h := uint64(s.hydrated)
	var inflight uint64
	if s.enabled && h < s.total {
		inflight = uint64(s.threshold)
	}
	var feats []string
	if !s.enabled {
		feats = []string{dm.CloneFeatureNoHydration}
	}
	return dm.CloneStatus{
		HydratedRegions:    h,
		TotalRegions:       s.total,
		HydratingRegions:   inflight,
		RegionSize:         dm.Sectors(s.regionSectors),
		Features:           feats,
		HydrationThreshold: s.threshold,
		HydrationBatchSize: s.batch,
		MetadataMode:       "rw",
	}
}

// send applies dm-clone messages now, as dm.Client.Message would.
func (s *simDevice) send(t testing.TB, msgs []string) {
	t.Helper()
	s.advance()
	for _, m := range msgs {
		s.messages = append(s.messages, m)
		f := strings.Fields(m)
		var n uint64
		if len(f) == 2 {
			var err error
			n, err = strconv.ParseUint(f[1], 10, 32)
			require.NoError(t, err, m)
		}
		switch {
		case m == dm.MsgEnableHydration:
			s.enabled = true
		case m == dm.MsgDisableHydration:
			if s.enabled {
				// Copies in flight complete after disable_hydration.
				s.hydrated = math.Min(float64(s.total), s.hydrated+float64(s.threshold))
			}
			s.enabled = false
		case m == dm.MsgHydrationThreshold(uint(n)):
			s.threshold = uint(n)
		case m == dm.MsgHydrationBatchSize(uint(n)):
			s.batch = uint(n)
		default:
			t.Fatalf("unknown message %q", m)
		}
	}
}

// bytesAt returns the exact hydrated bytes of the simulation now.
func (s *simDevice) bytesAt() float64 {
	s.advance()
	return s.hydrated * float64(s.regionSectors*dm.SectorSize)
}

// point is the simulation's hydrated bytes at a time.
type point struct {
	t     time.Time
	bytes float64
}

// drive runs c against dev for d of simulated time: a sample, Decide
// with the schedule's rate, the messages sent, a wait until Decision.Next.
// It records the hydrated bytes after each step and returns with the last
// decision (Next zero when dev is hydrated).
func drive(t *testing.T, c *Controller, sch Schedule, clk *fakeClock, dev *simDevice, d time.Duration) ([]point, Decision) {
	t.Helper()
	end := clk.Now().Add(d)
	pts := []point{{clk.Now(), dev.bytesAt()}}
	var dec Decision
	for clk.Now().Before(end) {
		dec = c.Decide(dev.status(), clk.Now(), sch.RateAt(clk.Now()))
		dev.send(t, dec.Messages)
		pts = append(pts, point{clk.Now(), dev.bytesAt()})
		if dec.Next.IsZero() {
			break
		}
		require.True(t, dec.Next.After(clk.Now()), "Decide must ask for a later sample while hydrating")
		clk.Advance(dec.Next.Sub(clk.Now()))
	}
	pts = append(pts, point{clk.Now(), dev.bytesAt()})
	return pts, dec
}

// avgRate is the average rate between from and to (relative to the first
// point), using the nearest recorded points inside the span.
func avgRate(pts []point, from, to time.Duration) float64 {
	t0 := pts[0].t
	var a, b *point
	for i := range pts {
		off := pts[i].t.Sub(t0)
		if a == nil && off >= from {
			a = &pts[i]
		}
		if off <= to {
			b = &pts[i]
		}
	}
	if a == nil || b == nil || !b.t.After(a.t) {
		return 0
	}
	return (b.bytes - a.bytes) / b.t.Sub(a.t).Seconds()
}

// maxWindowRate is the highest average rate over any span of at least w
// between recorded points after skip.
func maxWindowRate(pts []point, skip, w time.Duration) float64 {
	return windowRate(pts, skip, w, 0, math.Max)
}

// minWindowRate is the lowest average rate over any span of at least w
// between recorded points after skip.
func minWindowRate(pts []point, skip, w time.Duration) float64 {
	return windowRate(pts, skip, w, math.Inf(1), math.Min)
}

// windowRate folds the average rates over every span of at least w between
// recorded points after skip into best with pick.
func windowRate(pts []point, skip, w time.Duration, best float64, pick func(a, b float64) float64) float64 {
	t0 := pts[0].t
	j := 0
	for i := range pts {
		if pts[i].t.Sub(t0) < skip {
			continue
		}
		if j < i {
			j = i
		}
		for j < len(pts) && pts[j].t.Sub(pts[i].t) < w {
			j++
		}
		if j == len(pts) {
			break
		}
		best = pick(best, (pts[j].bytes-pts[i].bytes)/pts[j].t.Sub(pts[i].t).Seconds())
	}
	return best
}

// monday0759 is a Monday morning in UTC, for schedule tests.
var monday0759 = time.Date(2026, 11, 23, 7, 59, 0, 0, time.UTC)
