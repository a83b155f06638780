package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lunferry/lunferry/integration/vm"
)

// LabOptions configures one bench run from the host.
type LabOptions struct {
	Params Params
	// Command runs the guest side in the VM (RunGuest): the bench binary
	// with -guest, or a test binary's guest test.
	Command []string
	// Env is the guest command's environment.
	Env []string
	// Out is the directory for results.json, results.md and the plots.
	Out string
	// Log receives the guest's output live (may be nil).
	Log io.Writer
}

// RunLab boots the lab VM once, runs the guest side and writes the
// outputs, also when the VM failed part way (the figures measured before
// are kept; the failure is listed).
func RunLab(ctx context.Context, o LabOptions) (*Results, error) {
	res := &Results{Mode: o.Params.Mode, Started: time.Now(), Params: o.Params, LeftOut: LeftOut(o.Params), Machine: machine()}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	r, err := vm.Run(ctx, vm.Options{MemoryMiB: o.Params.MemoryMiB, Timeout: o.Params.Timeout,
		Command: o.Command, Env: o.Env, Output: log})
	if r != nil {
		collect(res, r.Output)
		res.Machine.Kernel = r.Kernel
		if err == nil && r.ExitCode != 0 {
			res.Failures = append(res.Failures, fmt.Sprintf("guest exited %d", r.ExitCode))
		}
	}
	if err != nil {
		res.Failures = append(res.Failures, err.Error())
	}
	res.Took = Duration(time.Since(res.Started))
	res.Machine.LoadAvg = append(res.Machine.LoadAvg, loadAvg())
	if werr := res.Write(o.Out); werr != nil {
		return res, werr
	}
	return res, err
}

// collect reads the guest's Marker lines into res.
func collect(res *Results, out []byte) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		l, ok := strings.CutPrefix(strings.TrimRight(sc.Text(), "\r"), Marker+" ")
		if !ok {
			continue
		}
		var rec Record
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("unreadable guest record: %v", err))
			continue
		}
		switch {
		case rec.Figure != nil:
			res.Figures = append(res.Figures, *rec.Figure)
		case rec.Series != nil:
			res.Series = append(res.Series, *rec.Series)
		case rec.Failure != "":
			res.Failures = append(res.Failures, rec.Failure)
		}
	}
}

// Write saves results.json, results.md and the plots under dir.
func (r *Results) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return r.plots(dir)
}

// Plots lists the PNGs the bench draws: file, title, unit, series IDs.
var Plots = []struct {
	File, Title, Unit string
	IDs               []string
}{
	{"hydration-rate.png", "hydration rate over time (unthrottled)", "MiB/s", []string{"hydration-alone", "hydration-with-host"}},
	{"host-latency.png", "host 4k random read latency during hydration (mean per 250 ms)", "ms", []string{"latency-hydrating", "latency-idle"}},
}

func (r *Results) plots(dir string) error {
	for _, p := range Plots {
		var ss []Series
		for _, id := range p.IDs {
			for _, s := range r.Series {
				if s.ID == id && len(s.Points) > 0 {
					ss = append(ss, s)
				}
			}
		}
		if len(ss) == 0 {
			continue
		}
		if err := PlotSeries(filepath.Join(dir, p.File), p.Title, p.Unit, ss...); err != nil {
			return err
		}
	}
	return nil
}

// machine describes the host the bench runs on.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), VM: "qemu TCG", LoadAvg: []string{loadAvg()}}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.Model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:")), "%d", &kb)
		m.MemMiB = kb / 1024
	}
	return m
}

// loadAvg is the 1, 5 and 15 minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
