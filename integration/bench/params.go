package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Params sizes one run of the bench.
type Params struct {
	Mode string `json:"mode"`
	// LUNBytes is the size of the old, new and scratch LUNs.
	LUNBytes int64 `json:"lunBytes"`
	// Reps is how many times each A/B pair is measured.
	Reps int `json:"reps"`
	// FioRuntime is each fio job's measured time (after FioRamp).
	FioRuntime time.Duration `json:"fioRuntime"`
	FioRamp    time.Duration `json:"fioRamp"`
	// LatencyRuntime and LatencyIOPS: the fixed-rate 4k randread job.
	LatencyRuntime time.Duration `json:"latencyRuntime"`
	LatencyIOPS    int           `json:"latencyIOPS"`
	// AdaptiveRuntime and AdaptiveRamp: the latency job under the
	// adaptive throttle (the ramp covers its baseline probe and first
	// back-offs).
	AdaptiveRuntime time.Duration `json:"adaptiveRuntime"`
	AdaptiveRamp    time.Duration `json:"adaptiveRamp"`
	// HoldRuntime is how long fio runs across finalize's swap.
	HoldRuntime time.Duration `json:"holdRuntime"`
	// ThrottleRates are asked, each over ThrottleWindow, ThrottleReps
	// times with and without `run`.
	ThrottleRates  []int64       `json:"throttleRates"`
	ThrottleWindow time.Duration `json:"throttleWindow"`
	ThrottleReps   int           `json:"throttleReps"`
	// ScaleVolumes of ScaleLUNBytes each on one proxy, `run` watched for
	// ScaleWindow.
	ScaleVolumes  int           `json:"scaleVolumes"`
	ScaleLUNBytes int64         `json:"scaleLUNBytes"`
	ScaleWindow   time.Duration `json:"scaleWindow"`
	// EraRuntime is each era overhead job's measured time (after
	// FioRamp): 12 jobs a repetition, so the smoke run's is short.
	EraRuntime time.Duration `json:"eraRuntime"`
	// Sweep are the copy settings the sweep measures (DefaultSweepPoint
	// among them), each SweepReps times.
	Sweep     []SweepPoint `json:"sweep"`
	SweepReps int          `json:"sweepReps"`
	// MemoryMiB is the lab VM's memory: the arrays' backing files live in
	// its RAM.
	MemoryMiB int `json:"memoryMiB"`
	// Timeout bounds the whole boot.
	Timeout time.Duration `json:"timeout"`
	// Groups, when set, are the only figure groups measured (GroupIDs).
	Groups []string `json:"groups,omitempty"`
}

// Runs says whether the figure group id is measured.
func (p Params) Runs(id string) bool {
	return len(p.Groups) == 0 || slices.Contains(p.Groups, id)
}

// WithGroups returns p measuring only the comma-separated groups in only
// ("" keeps every group); an unknown group is an error naming the known.
func (p Params) WithGroups(only string) (Params, error) {
	if only == "" {
		return p, nil
	}
	p.Groups = nil
	for _, id := range strings.Split(only, ",") {
		id = strings.TrimSpace(id)
		if !slices.Contains(GroupIDs, id) {
			return p, fmt.Errorf("bench: no figure group %q: want a comma-separated list of %s", id, strings.Join(GroupIDs, ", "))
		}
		p.Groups = append(p.Groups, id)
	}
	return p, nil
}

// FullParams are `make bench`'s.
func FullParams() Params {
	return Params{Mode: "full", LUNBytes: 256 << 20, Reps: 5,
		FioRuntime: 2 * time.Second, FioRamp: time.Second,
		LatencyRuntime: 3 * time.Second, LatencyIOPS: 50, HoldRuntime: 6 * time.Second,
		AdaptiveRuntime: 15 * time.Second, AdaptiveRamp: 5 * time.Second,
		ThrottleRates: []int64{1 << 20, 2 << 20, 4 << 20}, ThrottleWindow: 30 * time.Second, ThrottleReps: 1,
		ScaleVolumes: 64, ScaleLUNBytes: 4 << 20, ScaleWindow: 15 * time.Second, EraRuntime: 2 * time.Second,
		Sweep: fullSweep(), SweepReps: 2,
		MemoryMiB: 3072, Timeout: 110 * time.Minute}
}

// fullSweep: region sizes 4 KiB, 64 KiB (the default) and 512 KiB, each
// with 1, 4 (the default) and 16 MiB in flight in 1 MiB copies, and the
// default region copied a region at a time.
func fullSweep() []SweepPoint {
	var pts []SweepPoint
	for _, r := range []uint64{8, 128, 1024} {
		for _, f := range []uint64{1 << 20, 4 << 20, 16 << 20} {
			pts = append(pts, SweepPoint{RegionSectors: r, InFlightBytes: f, CopyBytes: 1 << 20})
		}
	}
	return append(pts, SweepPoint{RegionSectors: 128, InFlightBytes: 4 << 20, CopyBytes: 64 << 10})
}

// SmokeParams are the smoke test's: tiny sizes, one repetition, seconds.
func SmokeParams() Params {
	return Params{Mode: "smoke", LUNBytes: 16 << 20, Reps: 1,
		FioRuntime: time.Second, FioRamp: 0,
		LatencyRuntime: time.Second, LatencyIOPS: 50, HoldRuntime: 4 * time.Second,
		AdaptiveRuntime: 2 * time.Second, AdaptiveRamp: 0,
		// One rate for the same reason: each costs ~20 s of set-up.
		ThrottleRates: []int64{512 << 10}, ThrottleWindow: 3 * time.Second, ThrottleReps: 1,
		ScaleVolumes: 4, ScaleLUNBytes: 4 << 20, ScaleWindow: 3 * time.Second, EraRuntime: 500 * time.Millisecond,
		// One point: the smoke run keeps `make test` under its budget;
		// the ratio to the default is the same code for every other point.
		Sweep: []SweepPoint{DefaultSweepPoint()}, SweepReps: 1,
		MemoryMiB: 2048, Timeout: 40 * time.Minute}
}

// ParamsFor returns the parameters of a mode ("full" or "smoke").
func ParamsFor(mode string) (Params, error) {
	switch mode {
	case "full":
		return FullParams(), nil
	case "smoke":
		return SmokeParams(), nil
	}
	return Params{}, fmt.Errorf("bench: mode %q: want full or smoke", mode)
}

// String says the sizes in one line.
func (p Params) String() string {
	only := ""
	if len(p.Groups) > 0 {
		only = "; only the figure groups " + strings.Join(p.Groups, ", ")
	}
	return fmt.Sprintf("LUNs %d MiB, %d repetitions, fio %s (+%s ramp) per job, latency job %d IOPS for %s, throttle windows %s ×%d, %d volumes of %d MiB for scale",
		p.LUNBytes>>20, p.Reps, p.FioRuntime, p.FioRamp, p.LatencyIOPS, p.LatencyRuntime, p.ThrottleWindow, p.ThrottleReps,
		p.ScaleVolumes, p.ScaleLUNBytes>>20) + only
}
