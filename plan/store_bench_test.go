package plan_test

import (
	"fmt"
	"testing"

	"github.com/lunferry/lunferry/plan"
)

// BenchmarkStoreSave is the cost of persisting one volume's state the way
// every step and every control round does: JSON, temp file, fsync, rename,
// fsync of the directory. The fsyncs dominate; on the proxy's state disk
// this bounds how often progress can be saved.
func BenchmarkStoreSave(b *testing.B) {
	s := plan.Store{Dir: b.TempDir()}
	v := &plan.Volume{Spec: spec("bench"), Step: plan.StepHydrating}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreLoadAll reads the state of 64 volumes, as every command
// and every round of `lunferry run` does.
func BenchmarkStoreLoadAll(b *testing.B) {
	s := plan.Store{Dir: b.TempDir()}
	for i := range 64 {
		v := &plan.Volume{Spec: spec(fmt.Sprintf("vol%02d", i)), Step: plan.StepHydrating}
		if err := s.Save(v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		vols, err := s.LoadAll()
		if err != nil || len(vols) != 64 {
			b.Fatalf("LoadAll: %d volumes, %v", len(vols), err)
		}
	}
}
