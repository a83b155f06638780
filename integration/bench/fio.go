package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Job is one fio workload on a raw disk.
type Job struct {
	// Name is short ("randread"); RW is fio's rw; BS its block size.
	Name, RW, BS string
	IODepth      int
	// RateIOPS, when set, fixes the rate (latency measurements).
	RateIOPS int
}

// HostJobs are the host I/O workloads the throughput figures compare.
var HostJobs = []Job{
	{Name: "randread", RW: "randread", BS: "4k", IODepth: 16},
	{Name: "randwrite", RW: "randwrite", BS: "4k", IODepth: 16},
	{Name: "seqread", RW: "read", BS: "1M", IODepth: 4},
	{Name: "seqwrite", RW: "write", BS: "1M", IODepth: 4},
}

// LatencyJob is the fixed-rate 4k random read whose p99 the latency
// figure compares.
func LatencyJob(iops int) Job {
	return Job{Name: "latency", RW: "randread", BS: "4k", IODepth: 1, RateIOPS: iops}
}

// FioResult is what one fio run measured.
type FioResult struct {
	// BytesPerSec is read plus write bandwidth.
	BytesPerSec float64
	// P99 is the 99th percentile completion latency.
	P99 time.Duration
	// Errors is fio's error count.
	Errors int
}

// fioArgs renders fio's command line for job on dev; latLog, when set, is
// the prefix of a per-I/O completion latency log.
func fioArgs(dev string, job Job, runtime, ramp time.Duration, latLog string) []string {
	args := []string{"--name=" + job.Name, "--filename=" + dev, "--rw=" + job.RW, "--bs=" + job.BS,
		"--iodepth=" + strconv.Itoa(job.IODepth), "--ioengine=libaio", "--direct=1", "--time_based",
		"--runtime=" + strconv.Itoa(int(runtime.Milliseconds())) + "ms", "--output-format=json",
		"--randrepeat=0", "--norandommap"}
	if ramp > 0 {
		args = append(args, "--ramp_time="+strconv.Itoa(int(ramp.Milliseconds()))+"ms")
	}
	if job.RateIOPS > 0 {
		args = append(args, "--rate_iops="+strconv.Itoa(job.RateIOPS))
	}
	if latLog != "" {
		args = append(args, "--write_lat_log="+latLog, "--log_avg_msec=0")
	}
	return args
}

// RunFio runs job on dev and parses its JSON report.
func RunFio(ctx context.Context, dev string, job Job, runtime, ramp time.Duration, latLog string) (FioResult, error) {
	cmd := exec.CommandContext(ctx, "fio", fioArgs(dev, job, runtime, ramp, latLog)...)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return FioResult{}, fmt.Errorf("bench: fio %s on %s: %w %s", job.Name, dev, err, msg)
	}
	return ParseFio(out)
}

type fioDir struct {
	BWBytes float64 `json:"bw_bytes"`
	IOs     int64   `json:"total_ios"`
	Clat    struct {
		Percentile map[string]float64 `json:"percentile"`
	} `json:"clat_ns"`
}

// ParseFio reads fio's --output-format=json report of one job. fio may
// print notices before the JSON: they are skipped.
func ParseFio(out []byte) (FioResult, error) {
	i := strings.IndexByte(string(out), '{')
	if i < 0 {
		return FioResult{}, fmt.Errorf("bench: fio printed no JSON: %.200s", out)
	}
	var rep struct {
		Jobs []struct {
			Error int    `json:"error"`
			Read  fioDir `json:"read"`
			Write fioDir `json:"write"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out[i:], &rep); err != nil {
		return FioResult{}, fmt.Errorf("bench: fio JSON: %w", err)
	}
	if len(rep.Jobs) != 1 {
		return FioResult{}, fmt.Errorf("bench: fio JSON: %d jobs, want 1", len(rep.Jobs))
	}
	j := rep.Jobs[0]
	r := FioResult{BytesPerSec: j.Read.BWBytes + j.Write.BWBytes, Errors: j.Error}
	d := j.Read
	if j.Write.IOs > j.Read.IOs {
		d = j.Write
	}
	r.P99 = time.Duration(d.Clat.Percentile["99.000000"])
	return r, nil
}

// LongestGap reads a fio completion latency log (lines "msec, value, ddir,
// bs, offset[, prio]") and returns the longest time between two
// consecutive completions, with the number of completions.
func LongestGap(path string) (time.Duration, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	var prev, gap int64 = -1, 0
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ms, err := strconv.ParseInt(strings.TrimSpace(strings.Split(sc.Text(), ",")[0]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("bench: %s: line %q: %w", path, sc.Text(), err)
		}
		if prev >= 0 && ms-prev > gap {
			gap = ms - prev
		}
		prev = ms
		n++
	}
	return time.Duration(gap) * time.Millisecond, n, sc.Err()
}

// LatencySeries reads a fio completion latency log into per-bin mean
// latencies in ms, bin wide, time relative to offset.
func LatencySeries(path string, bin time.Duration, offset time.Duration) ([]Point, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	sums := map[int64][2]float64{}
	var keys []int64
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(l, ",")
		if len(f) < 2 {
			continue
		}
		ms, err1 := strconv.ParseInt(strings.TrimSpace(f[0]), 10, 64)
		ns, err2 := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bench: %s: line %q", path, l)
		}
		k := ms / bin.Milliseconds()
		s, ok := sums[k]
		if !ok {
			keys = append(keys, k)
		}
		sums[k] = [2]float64{s[0] + ns/1e6, s[1] + 1}
	}
	var pts []Point
	for _, k := range keys {
		s := sums[k]
		pts = append(pts, Point{T: (time.Duration(k)*bin + bin/2 + offset).Seconds(), V: s[0] / s[1]})
	}
	return pts, nil
}
