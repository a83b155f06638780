package bench

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Summary
	}{
		{[]float64{3, 1, 2}, Summary{Median: 2, Min: 1, Max: 3, N: 3}},
		{[]float64{4, 1, 2, 3}, Summary{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{[]float64{math.NaN(), 5, math.Inf(1)}, Summary{Median: 5, Min: 5, Max: 5, N: 1}},
		{nil, Summary{}},
	} {
		if got := Summarize(c.in); got != c.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestRatiosPairwise(t *testing.T) {
	got := Ratios([]float64{2, 9, 1}, []float64{4, 3})
	if len(got) != 2 || got[0] != 0.5 || got[1] != 3 {
		t.Fatalf("Ratios = %v, want [0.5 3]", got)
	}
}
