package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// scrapeRun starts `lunferry run --metrics-listen 127.0.0.1:0` over a
// hydrating volume and returns one scrape of its /metrics.
func scrapeRun(t *testing.T) string {
	c := newCLI(t)
	c.ok(addArgs...)
	for _, step := range []string{"prepare", "cutover", "start"} {
		c.ok("migrate", step, "vol1")
	}
	r, w, err := os.Pipe()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	code := -1
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer w.Close()
		ports := c.k.Ports()
		e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: w, ports: func(globals) plan.Ports { return ports }}
		code = run(ctx, e, []string{"lunferry", "--state-dir", c.dir, "--total-rate", "400MiB/s", "run", "--interval", "10ms",
			"--metrics-listen", "127.0.0.1:0"})
	}()
	lines := bufio.NewScanner(r)
	var url string
	for url == "" && lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "lunferry: metrics on "); ok {
			url = rest
		}
	}
	require.NotEmpty(t, url, "no metrics line")
	go io.Copy(io.Discard, r)
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	cancel()
	wg.Wait()
	require.Equal(t, 0, code)
	return string(body)
}

// TestRunServesMetrics: run's /metrics shows the volumes and the budget.
func TestRunServesMetrics(t *testing.T) {
	out := scrapeRun(t)
	for _, want := range []string{
		`lunferry_status_ok 1`,
		`lunferry_volume_step{step="hydrating",volume="vol1"} 1`,
		`lunferry_volume_throttle_bytes_per_second{volume="vol1"} 1.048576e+08`,
		`lunferry_hydration_budget_bytes_per_second 4.194304e+08`,
		`lunferry_volume_host_sessions{volume="vol1"} 1`,
		`lunferry_volume_window_seconds{volume="vol1"}`,
	} {
		require.Contains(t, out, want)
	}
}

// TestRunMetricsPassPromtool: a scrape passes `promtool check metrics`
// (Debian's prometheus package; not installed by scripts/deps.sh, see
// scripts/packaging/README.md). internal/metrics runs the same linter
// (promlint) in every unit pass.
func TestRunMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus): internal/metrics' promlint test covers the same rules")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrapeRun(t))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "promtool check metrics: %s", out.String())
}
