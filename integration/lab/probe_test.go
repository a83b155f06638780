package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestProbeReadsAndTimes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.dat")
	if err := os.WriteFile(p, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st, err := Probe(ctx, p, 16<<10, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reads < 2 || st.Errors != 0 || st.MaxStall <= 0 {
		t.Fatalf("probe: %+v", st)
	}
	if _, err := Probe(ctx, p, 1024, time.Millisecond); err == nil {
		t.Error("a stride below one block was accepted")
	}
}
