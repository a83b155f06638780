package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// notifyLog is what a process sent to its NOTIFY_SOCKET, in order.
type notifyLog struct {
	mu   sync.Mutex
	msgs []string
}

// listenNotify opens a unixgram socket as systemd's NOTIFY_SOCKET and
// records every message; it reads continuously, as systemd does, so a
// sender never blocks on a full socket.
func listenNotify(t *testing.T) (string, *notifyLog) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n := &notifyLog{}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			for _, l := range strings.Split(string(buf[:k]), "\n") {
				if l != "" {
					n.msgs = append(n.msgs, l)
				}
			}
			n.mu.Unlock()
		}
	}()
	return path, n
}

// index is the position of the first msg at or after from, -1 if none.
func (n *notifyLog) index(msg string, from int) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := from; i < len(n.msgs); i++ {
		if n.msgs[i] == msg {
			return i
		}
	}
	return -1
}

// packagedVolume sets up one volume cut over and hydrating (8 MiB of
// random data, the host logged in to the export), driven by the
// installed lunferry.
func packagedVolume(t *testing.T, name string) (*scene, int64) {
	t.Helper()
	const size = 8 << 20
	s := newScene(t, size, size)
	s.lf = "/usr/sbin/lunferry"
	// No pre-cutover hook: both LUNs are the proxy's from the start.
	for _, a := range s.cfg.Arrays {
		err := a.SetACLs(s.cfg.ProxyIQN)
		if err == nil {
			err = a.Up()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s.save()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.cfg.Arrays["old"].Backing, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sp := s.spec(name, "old", "new")
	sp.Old.SizeBytes = size
	sp.Identity = "new" // the lab arrays' raw LUNs have no identity LIO can show again
	sp.Hooks = plan.Hooks{PostCutover: []string{s.hook("host-login")}, Timeout: plan.Duration(time.Minute)}
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	for _, step := range []string{"prepare", "cutover", "start"} {
		s.mustLF("migrate", step, name)
	}
	return s, size
}

// startUnit starts argv with exactly env, as systemd starts ExecStart.
func startUnit(t *testing.T, argv, env []string) *background {
	t.Helper()
	bg := &background{out: &syncBuffer{}, done: make(chan struct{})}
	bg.cmd = exec.Command(argv[0], argv[1:]...)
	bg.cmd.Env = env
	bg.cmd.Stdout, bg.cmd.Stderr = bg.out, bg.out
	if err := bg.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { bg.cmd.Wait(); close(bg.done) }()
	t.Cleanup(func() { bg.stop() })
	return bg
}

// exited reports whether the process has ended.
func (bg *background) exited() bool {
	select {
	case <-bg.done:
		return true
	default:
		return false
	}
}

// waitNotify waits for msg at or after from while the process runs.
func waitNotify(t *testing.T, bg *background, n *notifyLog, msg string, from int, timeout time.Duration) int {
	t.Helper()
	waitFor(t, timeout, msg+" on NOTIFY_SOCKET", func() bool { return n.index(msg, from) >= 0 || bg.exited() })
	i := n.index(msg, from)
	if i < 0 {
		t.Fatalf("lunferry run ended before sending %s: %v\n%s", msg, bg.cmd.ProcessState, bg.out.String())
	}
	return i
}

// runInstalled starts the installed lunferry as the unit does, over a
// volume whose export was removed (as after a reboot), and checks
// READY=1 (export back), WATCHDOG=1, and the metrics of the env file's
// address once the volume is hydrated; then stops it as systemd does.
// It returns the scene, whose volume is still served by the proxy.
func runInstalled(t *testing.T, u unitFile) *scene {
	t.Helper()
	const name = "pkg"
	s, size := packagedVolume(t, name)
	if err := kernel.Ports(kernel.Options{}).Exporter.Teardown(context.Background(), s.cfg.ExportIQN, plan.DMName(name)); err != nil {
		t.Fatal(err)
	}
	if st := s.status(name); len(st.Drift) == 0 {
		t.Fatalf("status shows no drift with the export removed: %+v", st)
	}
	sock, notes := listenNotify(t)
	fileEnv := readEnvFile(t, u.envFile(t))
	addr := envValue(fileEnv, "LUNFERRY_METRICS_LISTEN")
	if addr == "" {
		t.Fatalf("%s sets no LUNFERRY_METRICS_LISTEN", u.envFile(t))
	}
	// systemd's environment for a system service, the env file, then
	// what the test changes: the state directory, and what systemd adds
	// for Type=notify with WatchdogSec.
	env := append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, fileEnv...)
	env = append(env, "LUNFERRY_STATE_DIR="+s.state, "NOTIFY_SOCKET="+sock,
		fmt.Sprintf("WATCHDOG_USEC=%d", unitSpan(t, u, "[Service]WatchdogSec").Microseconds()))
	start := time.Now()
	bg := startUnit(t, u.execStart(t), env)
	ready := waitNotify(t, bg, notes, "READY=1", 0, 5*time.Minute)
	st := s.status(name)
	s.logf("READY=1 %.1fs after start: drift %v, serving %s", time.Since(start).Seconds(), st.Drift, st.Serving)
	if len(st.Drift) != 0 || !strings.HasPrefix(st.Serving, "proxy") {
		t.Fatalf("READY=1 before the restore: drift %v, serving %q", st.Drift, st.Serving)
	}
	waitNotify(t, bg, notes, "WATCHDOG=1", ready+1, 2*time.Minute)
	waitFor(t, 3*time.Minute, "hydration to complete", func() bool { return s.status(name).Step == plan.StepHydrated })
	scrape := scrapeMetrics(t, addr)
	st = s.status(name)
	checkScrape(t, scrape, name, st, size)
	promtoolCheck(t, scrape)
	stopUnit(t, bg, u)
	s.logf("notifications: READY=1 then %d WATCHDOG=1 in %.1fs", countFrom(notes, "WATCHDOG=1", ready), time.Since(start).Seconds())
	return s
}

// countFrom counts msg after index from.
func countFrom(n *notifyLog, msg string, from int) int {
	c := 0
	for i := n.index(msg, from); i >= 0; i = n.index(msg, i+1) {
		c++
	}
	return c
}

// scrapeMetrics GETs http://addr/metrics.
func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape the env file's metrics address: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape http://%s/metrics: %s, %v\n%s", addr, resp.Status, err, b)
	}
	return string(b)
}

// checkScrape compares the scrape's samples for the volume with status.
func checkScrape(t *testing.T, scrape, name string, st plan.VolumeStatus, size int64) {
	t.Helper()
	region := float64(st.Progress.RegionSectors * 512)
	if st.Step != plan.StepHydrated || st.Progress.HydratedRegions != st.Progress.TotalRegions ||
		float64(st.Progress.TotalRegions)*region != float64(size) {
		t.Fatalf("status after hydration: %+v", st)
	}
	v := `{volume="` + name + `"}`
	want := map[string]float64{
		"lunferry_status_ok": 1,
		`lunferry_volume_step{step="hydrated",volume="` + name + `"}`: 1,
		"lunferry_volume_hydrated_bytes" + v:                          float64(st.Progress.HydratedRegions) * region,
		"lunferry_volume_bytes" + v:                                   float64(size),
		"lunferry_volume_proxy_serving" + v:                           1,
		"lunferry_volume_kernel_readable" + v:                         1,
		"lunferry_volume_drift_objects" + v:                           0,
		"lunferry_volume_paused" + v:                                  0,
	}
	for series, w := range want {
		got, ok := sample(scrape, series)
		if !ok || got != w {
			t.Errorf("scrape: %s = %v (present %v), want %v", series, got, ok, w)
		}
	}
	if t.Failed() {
		t.Fatalf("scrape:\n%s", scrape)
	}
	t.Logf("scrape: %d bytes, the volume's step, %v hydrated bytes, size, serving, drift as status says", len(scrape), want["lunferry_volume_hydrated_bytes"+v])
}

// sample returns the value of one series in a text exposition.
func sample(scrape, series string) (float64, bool) {
	for _, l := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// promtoolCheck runs `promtool check metrics` on the scrape: any
// message fails. Without promtool (Debian's prometheus package, not a
// lab dependency: scripts/packaging/README.md) it says so and passes.
func promtoolCheck(t *testing.T, scrape string) {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Logf("NOT CHECKED: promtool check metrics: no promtool on PATH (apt-get install prometheus)")
		return
	}
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	t.Logf("promtool check metrics: clean")
}

// stopUnit stops the process as systemd does (SIGTERM, then the unit's
// TimeoutStopSec) and wants a clean exit.
func stopUnit(t *testing.T, bg *background, u unitFile) {
	t.Helper()
	limit := unitSpan(t, u, "[Service]TimeoutStopSec")
	if err := bg.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bg.done:
	case <-time.After(limit):
		t.Fatalf("lunferry run still running %s after SIGTERM (TimeoutStopSec):\n%s", limit, bg.out.String())
	}
	if code := bg.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("lunferry run exited %d on SIGTERM:\n%s", code, bg.out.String())
	}
	t.Logf("lunferry run (installed, as the unit runs it):\n%s", bg.out.String())
}
