package metrics

import "github.com/prometheus/client_golang/prometheus"

// The metrics' descriptions: names, help and labels (the README lists them).
var (
	descStatusOK = prometheus.NewDesc("lunferry_status_ok",
		"1 when the last scrape read lunferry's state, 0 when it could not (no other metric is then sent).", nil, nil)
	descStrays = prometheus.NewDesc("lunferry_stray_objects",
		"Kernel objects with lunferry's prefix that no volume records (lunferry leaves them alone).", nil, nil)
	descBudget = prometheus.NewDesc("lunferry_hydration_budget_bytes_per_second",
		"The proxy's hydration budget shared by all volumes (--total-rate; absent when none is set).", nil, nil)
	descBudgetUsed = prometheus.NewDesc("lunferry_hydration_rate_bytes_per_second",
		"Hydration rate of all hydrating, unpaused volumes together: the budget's use.", nil, nil)

	volume       = []string{"volume"}
	descStep     = prometheus.NewDesc("lunferry_volume_step", "The volume's migration step (the step label; always 1).", []string{"volume", "step"}, nil)
	descPaused   = prometheus.NewDesc("lunferry_volume_paused", "1 when the volume's hydration is paused.", volume, nil)
	descHydrated = prometheus.NewDesc("lunferry_volume_hydrated_bytes",
		"Bytes of the volume hydrated onto the new LUN.", volume, nil)
	descSize = prometheus.NewDesc("lunferry_volume_bytes",
		"The volume's size in bytes, as dm-clone counts its regions (0 before the clone exists).", volume, nil)
	descRate = prometheus.NewDesc("lunferry_volume_hydration_rate_bytes_per_second",
		"The volume's measured hydration rate (smoothed).", volume, nil)
	descThrottle = prometheus.NewDesc("lunferry_volume_throttle_bytes_per_second",
		"The rate the volume's throttle allows now: 0 holds hydration, +Inf is no throttle.", volume, nil)
	descStalled = prometheus.NewDesc("lunferry_volume_hydration_stalled",
		"1 when hydration made no progress for long although it should (see lunferry migrate status).", volume, nil)
	descStalledSince = prometheus.NewDesc("lunferry_volume_hydration_stalled_since_timestamp_seconds",
		"When the stalled hydration last made progress (only while stalled).", volume, nil)
	descSessions = prometheus.NewDesc("lunferry_volume_host_sessions",
		"Initiators logged in to the volume's export on the proxy.", volume, nil)
	descProxyServing = prometheus.NewDesc("lunferry_volume_proxy_serving",
		"1 while the proxy serves the host's I/O (cut over until handed over or aborted).", volume, nil)
	descWindow = prometheus.NewDesc("lunferry_volume_window_seconds",
		"Wall time of the cutover window, pre-cutover hooks to the host's session (once cut over).", volume, nil)
	descSwapHeld = prometheus.NewDesc("lunferry_volume_swap_hold_seconds",
		"How long finalize's live table swap held the host's I/O (once finalized).", volume, nil)
	descLive = prometheus.NewDesc("lunferry_volume_kernel_readable",
		"1 when the volume's clone and export could be read from the kernel at this scrape.", volume, nil)
	descDrift = prometheus.NewDesc("lunferry_volume_drift_objects",
		"Kernel objects that differ from the volume's state (run and restore rebuild them).", volume, nil)
	descLastError = prometheus.NewDesc("lunferry_volume_last_error_info",
		"The error that interrupted the volume's current step (the error label; absent when none).", []string{"volume", "error"}, nil)

	allDescs = []*prometheus.Desc{descStatusOK, descStrays, descBudget, descBudgetUsed, descStep, descPaused,
		descHydrated, descSize, descRate, descThrottle, descStalled, descStalledSince, descSessions,
		descProxyServing, descWindow, descSwapHeld, descLive, descDrift, descLastError}
)
