package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lunferry/lunferry/integration/vmtest"
)

const (
	// envGuest selects the guest side's mode; set only by TestBenchSmoke.
	envGuest = "LUNFERRY_BENCH_GUEST"
	// envBin names prebuilt lunferry and lunferry-lab (make e2e-bin).
	envBin = "LUNFERRY_E2E_BIN"
)

// expectedFigures are the IDs every run must produce.
func expectedFigures(p Params) []string {
	ids := []string{"hydration", "finalize-hold", "finalize-swap-held", "latency-p99", "latency-p99-adaptive", "adaptive-hydration-rate",
		"scale-status", "scale-run-rss", "scale-run-rss-per-volume", "scale-run-cpu-per-volume", "verify-raw-read", "thin-hydration", "thin-allocation"}
	for _, j := range HostJobs {
		ids = append(ids, "hostio-export-twohop-"+j.Name, "hostio-export-direct-"+j.Name, "hostio-hydrating-"+j.Name)
	}
	for _, bs := range eraBlockSizes {
		for _, n := range eraJobNames {
			ids = append(ids, eraFigureID(n, bs))
		}
	}
	ids = append(ids, "sweep-rate-default", "sweep-p99-default")
	for _, pt := range p.Sweep {
		if pt != DefaultSweepPoint() {
			ids = append(ids, "sweep-rate-"+pt.ID(), "sweep-p99-"+pt.ID())
		}
	}
	for _, r := range p.ThrottleRates {
		for _, m := range throttleModes {
			ids = append(ids, fmt.Sprintf("throttle-%dKiB-%s", r>>10, m))
		}
	}
	return ids
}

// TestBenchSmoke runs the lab bench in smoke mode (tiny sizes, one
// repetition) in one boot and checks that every figure, the outputs and
// the plots were produced; it asserts nothing about the figures' values.
func TestBenchSmoke(t *testing.T) {
	vmtest.RequireLab(t)
	bin := os.Getenv(envBin)
	if bin == "" {
		bin = t.TempDir()
		buildBinaries(t, bin)
	}
	bin, err := PrivateBinaries(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	p := SmokeParams()
	res, err := RunLab(context.Background(), LabOptions{Params: p, Out: out, Log: &logWriter{t: t},
		Command: []string{exe, "-test.run=^TestBenchGuest$", "-test.v", "-test.count=1"},
		Env:     append(os.Environ(), envGuest+"=smoke", envBin+"="+bin)})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		t.Errorf("bench failure: %s", f)
	}
	got := map[string]Figure{}
	for _, f := range res.Figures {
		got[f.ID] = f
	}
	for _, id := range expectedFigures(p) {
		if f, ok := got[id]; !ok || f.Summary.N == 0 {
			t.Errorf("figure %s not produced (%+v)", id, f)
		}
	}
	for _, name := range []string{"results.json", "results.md", Plots[0].File, Plots[1].File} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("output: %v", err)
		}
	}
	t.Logf("results.md:\n%s", res.Markdown())
}

// TestBenchGuest is the guest side of TestBenchSmoke.
func TestBenchGuest(t *testing.T) {
	vmtest.Require(t)
	mode := os.Getenv(envGuest)
	if mode == "" {
		t.Skip("guest side of TestBenchSmoke: runs only when that test boots the lab")
	}
	p, err := ParamsFor(mode)
	if err != nil {
		t.Fatal(err)
	}
	if err := RunGuest(context.Background(), p, os.Getenv(envBin), os.Stdout); err != nil {
		t.Fatal(err)
	}
}

func buildBinaries(t *testing.T, dir string) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "./cmd/lunferry", "./integration/lab/cmd/lunferry-lab")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

// logWriter copies guest output to the test log line by line.
type logWriter struct {
	t   *testing.T
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		if l := string(w.buf[:i]); !strings.HasPrefix(l, Marker) {
			w.t.Logf("guest: %s", strings.TrimRight(l, "\r"))
		}
		w.buf = w.buf[i+1:]
	}
}
