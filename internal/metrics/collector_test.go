package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/internal/metrics"
	"github.com/lunferry/lunferry/plan"
)

// report is a proxy with one volume hydrating (stalled, one host session)
// and one finalized volume whose host lost its session.
func report() *plan.StatusReport {
	stalled := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	return &plan.StatusReport{Strays: []string{"dm device lunferry-x"}, Volumes: []plan.VolumeStatus{
		{Name: "db1", Step: plan.StepHydrating, Serving: "proxy (clone)", RateNow: "50MiB/s", Live: true,
			Progress: plan.Progress{HydratedRegions: 3, TotalRegions: 8, RegionSectors: 8, Rate: 1024},
			Sessions: []string{"iqn.1994-05.com.redhat:db1"}, StalledSince: stalled,
			Window: &plan.WindowTimes{Total: plan.Duration(90 * time.Second)}, LastError: `hook "x" failed`},
		{Name: "db2", Step: plan.StepFinalized, Serving: "proxy (linear over the new LUN)", RateNow: "unlimited",
			Live: true, Sessions: []string{}, SwapHeld: plan.Duration(250 * time.Millisecond), Drift: []string{"export gone"}},
	}}
}

const want = `
# HELP lunferry_hydration_budget_bytes_per_second The proxy's hydration budget shared by all volumes (--total-rate; absent when none is set).
# TYPE lunferry_hydration_budget_bytes_per_second gauge
lunferry_hydration_budget_bytes_per_second 4.194304e+08
# HELP lunferry_hydration_rate_bytes_per_second Hydration rate of all hydrating, unpaused volumes together: the budget's use.
# TYPE lunferry_hydration_rate_bytes_per_second gauge
lunferry_hydration_rate_bytes_per_second 1024
# HELP lunferry_status_ok 1 when the last scrape read lunferry's state, 0 when it could not (no other metric is then sent).
# TYPE lunferry_status_ok gauge
lunferry_status_ok 1
# HELP lunferry_stray_objects Kernel objects with lunferry's prefix that no volume records (lunferry leaves them alone).
# TYPE lunferry_stray_objects gauge
lunferry_stray_objects 1
# HELP lunferry_volume_bytes The volume's size in bytes, as dm-clone counts its regions (0 before the clone exists).
# TYPE lunferry_volume_bytes gauge
lunferry_volume_bytes{volume="db1"} 32768
lunferry_volume_bytes{volume="db2"} 0
# HELP lunferry_volume_drift_objects Kernel objects that differ from the volume's state (run and restore rebuild them).
# TYPE lunferry_volume_drift_objects gauge
lunferry_volume_drift_objects{volume="db1"} 0
lunferry_volume_drift_objects{volume="db2"} 1
# HELP lunferry_volume_host_sessions Initiators logged in to the volume's export on the proxy.
# TYPE lunferry_volume_host_sessions gauge
lunferry_volume_host_sessions{volume="db1"} 1
lunferry_volume_host_sessions{volume="db2"} 0
# HELP lunferry_volume_hydrated_bytes Bytes of the volume hydrated onto the new LUN.
# TYPE lunferry_volume_hydrated_bytes gauge
lunferry_volume_hydrated_bytes{volume="db1"} 12288
lunferry_volume_hydrated_bytes{volume="db2"} 0
# HELP lunferry_volume_hydration_rate_bytes_per_second The volume's measured hydration rate (smoothed).
# TYPE lunferry_volume_hydration_rate_bytes_per_second gauge
lunferry_volume_hydration_rate_bytes_per_second{volume="db1"} 1024
lunferry_volume_hydration_rate_bytes_per_second{volume="db2"} 0
# HELP lunferry_volume_hydration_stalled 1 when hydration made no progress for long although it should (see lunferry migrate status).
# TYPE lunferry_volume_hydration_stalled gauge
lunferry_volume_hydration_stalled{volume="db1"} 1
lunferry_volume_hydration_stalled{volume="db2"} 0
# HELP lunferry_volume_hydration_stalled_since_timestamp_seconds When the stalled hydration last made progress (only while stalled).
# TYPE lunferry_volume_hydration_stalled_since_timestamp_seconds gauge
lunferry_volume_hydration_stalled_since_timestamp_seconds{volume="db1"} 1.7960328e+09
# HELP lunferry_volume_kernel_readable 1 when the volume's clone and export could be read from the kernel at this scrape.
# TYPE lunferry_volume_kernel_readable gauge
lunferry_volume_kernel_readable{volume="db1"} 1
lunferry_volume_kernel_readable{volume="db2"} 1
# HELP lunferry_volume_last_error_info The error that interrupted the volume's current step (the error label; absent when none).
# TYPE lunferry_volume_last_error_info gauge
lunferry_volume_last_error_info{error="hook \"x\" failed",volume="db1"} 1
# HELP lunferry_volume_paused 1 when the volume's hydration is paused.
# TYPE lunferry_volume_paused gauge
lunferry_volume_paused{volume="db1"} 0
lunferry_volume_paused{volume="db2"} 0
# HELP lunferry_volume_proxy_serving 1 while the proxy serves the host's I/O (cut over until handed over or aborted).
# TYPE lunferry_volume_proxy_serving gauge
lunferry_volume_proxy_serving{volume="db1"} 1
lunferry_volume_proxy_serving{volume="db2"} 1
# HELP lunferry_volume_step The volume's migration step (the step label; always 1).
# TYPE lunferry_volume_step gauge
lunferry_volume_step{step="finalized",volume="db2"} 1
lunferry_volume_step{step="hydrating",volume="db1"} 1
# HELP lunferry_volume_swap_hold_seconds How long finalize's live table swap held the host's I/O (once finalized).
# TYPE lunferry_volume_swap_hold_seconds gauge
lunferry_volume_swap_hold_seconds{volume="db2"} 0.25
# HELP lunferry_volume_throttle_bytes_per_second The rate the volume's throttle allows now: 0 holds hydration, +Inf is no throttle.
# TYPE lunferry_volume_throttle_bytes_per_second gauge
lunferry_volume_throttle_bytes_per_second{volume="db1"} 5.24288e+07
lunferry_volume_throttle_bytes_per_second{volume="db2"} +Inf
# HELP lunferry_volume_window_seconds Wall time of the cutover window, pre-cutover hooks to the host's session (once cut over).
# TYPE lunferry_volume_window_seconds gauge
lunferry_volume_window_seconds{volume="db1"} 90
`

func source(rep *plan.StatusReport, err error) metrics.Source {
	return func(context.Context) (*plan.StatusReport, error) { return rep, err }
}

func TestCollectorRendersReport(t *testing.T) {
	c := metrics.New(metrics.Options{Source: source(report(), nil), Budget: 400 * clone.MiB})
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
}

// TestCollectorLints: the names, types and help pass client_golang's
// promlint, the linter `promtool check metrics` runs.
func TestCollectorLints(t *testing.T) {
	c := metrics.New(metrics.Options{Source: source(report(), nil), Budget: 400 * clone.MiB})
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestCollectorUnreadableState: a state that cannot be read is one
// metric saying so, not a scrape error or stale values.
func TestCollectorUnreadableState(t *testing.T) {
	c := metrics.New(metrics.Options{Source: source(nil, errors.New("state dir gone"))})
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP lunferry_status_ok 1 when the last scrape read lunferry's state, 0 when it could not (no other metric is then sent).
# TYPE lunferry_status_ok gauge
lunferry_status_ok 0
`)))
}

// TestCollectorNoBudget: without --total-rate there is no budget metric,
// only its use.
func TestCollectorNoBudget(t *testing.T) {
	c := metrics.New(metrics.Options{Source: source(report(), nil)})
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP lunferry_hydration_rate_bytes_per_second Hydration rate of all hydrating, unpaused volumes together: the budget's use.
# TYPE lunferry_hydration_rate_bytes_per_second gauge
lunferry_hydration_rate_bytes_per_second 1024
`), "lunferry_hydration_budget_bytes_per_second", "lunferry_hydration_rate_bytes_per_second"))
}
