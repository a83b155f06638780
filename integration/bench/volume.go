package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// lf runs lunferry on state with the lab's environment (its hooks find
// the lab config and tool there) and returns its stdout.
func (g *Guest) lf(ctx context.Context, state string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.Lunferry, append([]string{"--state-dir", state}, args...)...)
	cmd.Env = g.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("bench: lunferry %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

func (g *Guest) env() []string {
	return append(os.Environ(), lab.EnvConfig+"="+g.cfgPath, "LUNFERRY_LAB_TOOL="+g.LabTool)
}

// bgLF starts lunferry in the background (run, start --follow); stop
// interrupts it and waits.
func (g *Guest) bgLF(state string, args ...string) (*exec.Cmd, func(), error) {
	cmd := exec.Command(g.Lunferry, append([]string{"--state-dir", state}, args...)...)
	cmd.Env = g.env()
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("bench: lunferry %s: %w", strings.Join(args, " "), err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	return cmd, stop, nil
}

// spec is a volume from the old to the new array (or LUN lun of other
// targets), exported to the host under its own IQN, no fence (the bench
// reuses the old LUN), identity of its own.
func (g *Guest) spec(name string, oldA, newA *lab.Array, lun int, throttle string) (plan.Spec, error) {
	sch, err := clone.ParseSchedule(throttle)
	if err != nil {
		return plan.Spec{}, fmt.Errorf("bench: throttle %q: %w", throttle, err)
	}
	return plan.Spec{
		Name: name, HostIQN: g.cfg.Host.IQN, Throttle: sch, Identity: "new", Fence: "none",
		Old:    plan.LUN{Portal: oldA.Portals[0], IQN: oldA.IQN, LUN: lun},
		New:    plan.LUN{Portal: newA.Portals[0], IQN: newA.IQN, LUN: lun},
		Export: plan.Export{IQN: g.cfg.ExportIQN + "-" + name, Portals: []string{g.cfg.ExportPortal}},
		Hooks:  plan.Hooks{PostCutover: []string{g.hook}, Timeout: plan.Duration(5 * time.Minute)},
	}, nil
}

// cutover adds the volumes, prepares and cuts them over (the hook logs the
// host in to each export).
func (g *Guest) cutover(ctx context.Context, state string, specs ...plan.Spec) error {
	b, err := json.Marshal(plan.Runbook{Volumes: specs})
	if err != nil {
		return err
	}
	rb := filepath.Join(g.dir, fmt.Sprintf("runbook-%d.json", time.Now().UnixNano()))
	if err := os.WriteFile(rb, b, 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	for _, args := range [][]string{{"volume", "add", "--runbook", rb}, append([]string{"migrate", "prepare"}, names...),
		append([]string{"migrate", "cutover"}, names...)} {
		if _, err := g.lf(ctx, state, args...); err != nil {
			return err
		}
	}
	return nil
}

// hostDisk is the host's disk of an export it is logged in to.
func (g *Guest) hostDisk(iqn string) (string, error) {
	return g.cfg.Host.Login(g.cfg.ExportPortal, iqn, time.Minute)
}

// retire takes a volume away after its cycle: the host logs out, then
// abort (before finalize) or a removal of what finalize left (the export,
// the era device, the linear device below it, the era metadata and the
// session to the new LUN, as handover would), and the volume is forgotten.
func (g *Guest) retire(ctx context.Context, state string, sp plan.Spec, finalized bool) error {
	if err := g.cfg.Host.Logout(g.cfg.ExportPortal, sp.Export.IQN); err != nil {
		return err
	}
	if !finalized {
		if _, err := g.lf(ctx, state, "migrate", "abort", sp.Name); err != nil {
			return err
		}
		_, err := g.lf(ctx, state, "volume", "remove", sp.Name)
		return err
	}
	ports := kernel.Ports(kernel.Options{})
	if err := ports.Exporter.Teardown(ctx, sp.Export.IQN, plan.DMName(sp.Name)); err != nil {
		return fmt.Errorf("bench: retire %s: %w", sp.Name, err)
	}
	for _, n := range []string{plan.EraName(sp.Name), plan.DMName(sp.Name)} {
		if err := ports.Mapper.Remove(ctx, n); err != nil {
			return fmt.Errorf("bench: retire %s: %w", sp.Name, err)
		}
	}
	if err := ports.Metadata.DetachFile(ctx, filepath.Join(state, "metadata", sp.Name+".era"), true); err != nil {
		return fmt.Errorf("bench: retire %s: %w", sp.Name, err)
	}
	if err := ports.Initiator.Logout(ctx, plan.Target{Portal: sp.New.Portal, IQN: sp.New.IQN}); err != nil {
		return fmt.Errorf("bench: retire %s: %w", sp.Name, err)
	}
	_, err := g.lf(ctx, state, "volume", "remove", "--forget", sp.Name)
	return err
}

// cloneProgress reads `dmsetup status` of a volume's clone: hydrated and
// total regions and the region size in bytes. Fields after "clone":
// <metadata block size> <used>/<total metadata blocks> <region size>
// <hydrated>/<total regions> ...
func cloneProgress(name string) (hydrated, total, region uint64, err error) {
	out, err := exec.Command("dmsetup", "status", plan.DMName(name)).Output()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("bench: dmsetup status %s: %w", name, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 7 || f[2] != "clone" {
		return 0, 0, 0, fmt.Errorf("bench: dmsetup status %s: not a clone: %q", name, out)
	}
	rs, err1 := strconv.ParseUint(f[5], 10, 64)
	h, t, ok := strings.Cut(f[6], "/")
	hv, err2 := strconv.ParseUint(h, 10, 64)
	tv, err3 := strconv.ParseUint(t, 10, 64)
	if !ok || err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, fmt.Errorf("bench: dmsetup status %s: %q", name, out)
	}
	return hv, tv, rs * 512, nil
}

// sampler polls a clone's progress every period until stopped.
type sampler struct {
	mu      sync.Mutex
	start   time.Time
	samples []progressSample
	stop    chan struct{}
	done    chan struct{}
}

type progressSample struct {
	at              time.Time
	hydrated, total uint64
	region          uint64
}

func startSampler(name string, period time.Duration) *sampler {
	s := &sampler{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			if h, t, r, err := cloneProgress(name); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, progressSample{at: time.Now(), hydrated: h, total: t, region: r})
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-time.After(period):
			}
		}
	}()
	return s
}

// last returns the newest sample (ok false before the first).
func (s *sampler) last() (progressSample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return progressSample{}, false
	}
	return s.samples[len(s.samples)-1], true
}

func (s *sampler) halt() []progressSample {
	close(s.stop)
	<-s.done
	return s.samples
}

// waitHydrated polls until every region is hydrated.
func (s *sampler) waitHydrated(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p, ok := s.last(); ok && p.total > 0 && p.hydrated == p.total {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p, _ := s.last()
			return fmt.Errorf("bench: not hydrated after %s (%d of %d regions)", timeout, p.hydrated, p.total)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hydrationSpan returns the time from the last sample with nothing
// hydrated to the first with everything hydrated (from start when the
// first sample already showed progress).
func hydrationSpan(samples []progressSample, start time.Time) time.Duration {
	t0, t1 := start, time.Time{}
	for _, p := range samples {
		if p.hydrated == 0 {
			t0 = p.at
		}
		if p.total > 0 && p.hydrated == p.total && t1.IsZero() {
			t1 = p.at
		}
	}
	if t1.IsZero() {
		return 0
	}
	return t1.Sub(t0)
}

// rateSeries turns samples into hydration rate (MiB/s) over time, each
// point over at least window.
func rateSeries(samples []progressSample, origin time.Time, window time.Duration) []Point {
	var pts []Point
	j := 0
	for i := range samples {
		for j < i && samples[i].at.Sub(samples[j+1].at) >= window {
			j++
		}
		dt := samples[i].at.Sub(samples[j].at)
		if dt < window || samples[i].hydrated < samples[j].hydrated {
			continue
		}
		mib := float64((samples[i].hydrated-samples[j].hydrated)*samples[i].region) / (1 << 20)
		pts = append(pts, Point{T: samples[i].at.Sub(origin).Seconds(), V: mib / dt.Seconds()})
	}
	return pts
}
