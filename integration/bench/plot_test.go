package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestPlotSeriesWritesPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.png")
	s := Series{ID: "x", Title: "rate", Unit: "MiB/s", Points: []Point{{0, 1}, {1, 3}, {2, 2}}}
	if err := PlotSeries(path, "hydration", "MiB/s", s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("%s is not a PNG: % x", path, b[:8])
	}
}
