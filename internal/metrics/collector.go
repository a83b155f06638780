// Package metrics serves lunferry's migrations to Prometheus. A Collector
// reads a status report (what `lunferry migrate status` shows) at every
// scrape and renders it as gauges: nothing is cached between scrapes, so a
// scrape shows the state and the kernel as they are.
package metrics

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
)

// Source returns the report a scrape renders (plan.Planner.Status).
type Source func(ctx context.Context) (*plan.StatusReport, error)

// Options configures a Collector.
type Options struct {
	// Source reads the report.
	Source Source
	// Budget is the proxy's hydration budget (--total-rate); Paused (0)
	// when none is set.
	Budget clone.Rate
	// Timeout bounds one Source call (0: 10 s).
	Timeout time.Duration
}

// Collector is a prometheus.Collector over a Source.
type Collector struct {
	o Options
}

// New returns a Collector.
func New(o Options) *Collector {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return &Collector{o: o}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reads the report and sends its metrics. A report that cannot be
// read gives lunferry_status_ok 0 and nothing else.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	rep, err := c.o.Source(ctx)
	if err != nil {
		ch <- gauge(descStatusOK, 0)
		return
	}
	ch <- gauge(descStatusOK, 1)
	ch <- gauge(descStrays, float64(len(rep.Strays)))
	if c.o.Budget != clone.Paused {
		ch <- gauge(descBudget, rate(c.o.Budget))
	}
	var used float64
	for _, s := range rep.Volumes {
		collectVolume(ch, s)
		if s.Step == plan.StepHydrating && !s.Paused {
			used += s.Progress.Rate
		}
	}
	ch <- gauge(descBudgetUsed, used)
}

// collectVolume sends one volume's metrics.
func collectVolume(ch chan<- prometheus.Metric, s plan.VolumeStatus) {
	v := s.Name
	ch <- gauge(descStep, 1, v, string(s.Step))
	ch <- gauge(descPaused, flag(s.Paused), v)
	pr := s.Progress
	region := float64(pr.RegionSectors * 512)
	ch <- gauge(descHydrated, float64(pr.HydratedRegions)*region, v)
	ch <- gauge(descSize, float64(pr.TotalRegions)*region, v)
	ch <- gauge(descRate, pr.Rate, v)
	if r, err := clone.ParseRate(s.RateNow); err == nil {
		ch <- gauge(descThrottle, rate(r), v)
	}
	ch <- gauge(descStalled, flag(!s.StalledSince.IsZero()), v)
	if !s.StalledSince.IsZero() {
		ch <- gauge(descStalledSince, float64(s.StalledSince.UnixNano())/1e9, v)
	}
	ch <- gauge(descSessions, float64(len(s.Sessions)), v)
	ch <- gauge(descProxyServing, flag(strings.HasPrefix(s.Serving, "proxy")), v)
	if s.Window != nil {
		ch <- gauge(descWindow, s.Window.Total.D().Seconds(), v)
	}
	if s.SwapHeld > 0 {
		ch <- gauge(descSwapHeld, s.SwapHeld.D().Seconds(), v)
	}
	ch <- gauge(descLive, flag(s.Live), v)
	ch <- gauge(descDrift, float64(len(s.Drift)), v)
	if s.LastError != "" {
		ch <- gauge(descLastError, 1, v, s.LastError)
	}
}

// rate is r in bytes per second, +Inf for Unlimited.
func rate(r clone.Rate) float64 {
	if r == clone.Unlimited {
		return math.Inf(1)
	}
	return float64(r)
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}
