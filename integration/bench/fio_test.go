package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseFio(t *testing.T) {
	b, err := os.ReadFile("testdata/fio-randread.json") // fio 3.33, with its leading note
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseFio(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.BytesPerSec != 10375629 || r.P99 != 4292608*time.Nanosecond || r.Errors != 0 {
		t.Fatalf("ParseFio = %+v", r)
	}
	if _, err := ParseFio([]byte("fio: no such file")); err == nil {
		t.Fatal("ParseFio accepted output without JSON")
	}
}

func TestLongestGap(t *testing.T) {
	gap, n, err := LongestGap("testdata/gap.log")
	if err != nil {
		t.Fatal(err)
	}
	if gap != 126*time.Millisecond || n != 4 {
		t.Fatalf("LongestGap = %s over %d completions, want 126ms over 4", gap, n)
	}
}

func TestLatencySeries(t *testing.T) {
	pts, err := LatencySeries("testdata/gap.log", 100*time.Millisecond, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// bins 1 (100-199 ms: two I/Os of 1 ms) and 2 (200-299: 90 ms and 1 ms)
	if len(pts) != 2 || pts[0] != (Point{T: 1.15, V: 1}) || pts[1] != (Point{T: 1.25, V: 45.5}) {
		t.Fatalf("LatencySeries = %+v", pts)
	}
}

func TestFioArgsFixedRateAndLog(t *testing.T) {
	a := strings.Join(fioArgs("/dev/sdx", LatencyJob(50), 2*time.Second, 0, "/tmp/l"), " ")
	for _, want := range []string{"--filename=/dev/sdx", "--rate_iops=50", "--direct=1", "--runtime=2000ms", "--write_lat_log=/tmp/l", "--log_avg_msec=0"} {
		if !strings.Contains(a, want) {
			t.Errorf("fio args %q lack %s", a, want)
		}
	}
	if strings.Contains(a, "ramp_time") {
		t.Errorf("fio args %q have a ramp without one asked", a)
	}
}
