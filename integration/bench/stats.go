package bench

import (
	"math"
	"sort"
)

// Summary is the median and range of a figure's samples.
type Summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// N is the number of samples.
	N int `json:"n"`
}

// Summarize returns the median, min and max of samples, ignoring NaN and
// infinities (a measurement that divided by zero). No sample: N is 0.
func Summarize(samples []float64) Summary {
	var v []float64
	for _, s := range samples {
		if !math.IsNaN(s) && !math.IsInf(s, 0) {
			v = append(v, s)
		}
	}
	if len(v) == 0 {
		return Summary{}
	}
	sort.Float64s(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Summary{Median: m, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// Ratios divides a[i] by b[i], pairwise: each pair was measured in the
// same repetition, one right after the other.
func Ratios(a, b []float64) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, a[i]/b[i])
	}
	return out
}
