package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/clone"
)

func TestGoalMet(t *testing.T) {
	for _, c := range []struct {
		g        Goal
		v        float64
		met, has bool
	}{
		{AtLeast(0.9), 0.95, true, true},
		{AtLeast(0.9), 0.5, false, true},
		{AtMost(1.5), 1.6, false, true},
		{Between(0.9, 1.1), 1.05, true, true},
		{Between(0.9, 1.1), 1.2, false, true},
		{Reported(), 3, false, false},
	} {
		if met, has := c.g.Met(c.v); met != c.met || has != c.has {
			t.Errorf("%s.Met(%g) = %v, %v; want %v, %v", c.g, c.v, met, has, c.met, c.has)
		}
	}
}

func TestMarkdownTable(t *testing.T) {
	only, err := SmokeParams().WithGroups("hydration,scale")
	if err != nil {
		t.Fatal(err)
	}
	r := &Results{Mode: "smoke", Started: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC), LeftOut: LeftOut(only),
		Machine: Machine{Host: "box", CPUs: 2, LoadAvg: []string{"20.1 19 18", "21 20 19"}},
		Figures: []Figure{
			RatioFigure("hydration", "hydration rate / best raw copy", "dd", AtLeast(0.9), []float64{8, 9, 10}, []float64{10, 10, 10}),
			NewFigure("scale-status", "status time", "3 runs", "ms", AtMost(200), []float64{150}),
			NewFigure("x", "not measured one", "-", "ratio", AtLeast(1), nil),
		}}
	md := r.Markdown()
	for _, want := range []string{
		"| hydration rate / best raw copy | dd | ≥ 0.9 | 0.9 [0.8–1] | 3 | yes |",
		"| status time | 3 runs | ≤ 200 | 150 ms [150–150] | 1 | yes |",
		"| not measured one | - | ≥ 1 | 0 [0–0] | 0 | not measured |",
		"load average at start and end 20.1 19 18 / 21 20 19",
		"Not measured:\n\n- figure group load: not asked for (-only)\n", // LeftOut's lines
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "figure group scale") {
		t.Errorf("a group that ran is listed as not measured:\n%s", md)
	}
	r.LeftOut = LeftOut(SmokeParams())
	if md := r.Markdown(); strings.Contains(md, "Not measured") {
		t.Errorf("a whole run lists groups not measured:\n%s", md)
	}
}

func TestCollectReadsMarkerLines(t *testing.T) {
	out := "boot noise\r\n" + Marker + ` {"figure":{"id":"a","summary":{"n":1}}}` + "\r\n" +
		Marker + ` {"series":{"id":"s"}}` + "\n" + Marker + ` {"failure":"scale: boom"}` + "\n" + Marker + " {broken\n"
	r := &Results{}
	collect(r, []byte(out))
	if len(r.Figures) != 1 || r.Figures[0].ID != "a" || len(r.Series) != 1 || len(r.Failures) != 2 || r.Failures[0] != "scale: boom" {
		t.Fatalf("collect: %+v", r)
	}
}

func TestHydrationSpanAndRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := []progressSample{
		{at: at(0), total: 8, region: 1 << 20},
		{at: at(500), total: 8, region: 1 << 20},
		{at: at(1500), hydrated: 4, total: 8, region: 1 << 20},
		{at: at(2500), hydrated: 8, total: 8, region: 1 << 20},
		{at: at(3000), hydrated: 8, total: 8, region: 1 << 20},
	}
	if d := hydrationSpan(s, t0); d != 2*time.Second {
		t.Errorf("hydrationSpan = %s, want 2s (last empty sample to first full one)", d)
	}
	pts := rateSeries(s, t0, time.Second)
	if len(pts) == 0 || pts[0] != (Point{T: 1.5, V: 4}) {
		t.Errorf("rateSeries = %+v, want first point {1.5 4}", pts)
	}
}

func TestThrottleRatesParse(t *testing.T) {
	for _, p := range []Params{FullParams(), SmokeParams()} {
		for _, r := range p.ThrottleRates {
			if _, err := clone.ParseSchedule(fmtRate(r)); err != nil {
				t.Errorf("%s: throttle %s: %v", p.Mode, fmtRate(r), err)
			}
		}
	}
	if fmtRate(512<<10) != "512KiB/s" || fmtRate(2<<20) != "2MiB/s" {
		t.Errorf("fmtRate: %s %s", fmtRate(512<<10), fmtRate(2<<20))
	}
}
