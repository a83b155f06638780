package bench

import (
	"testing"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
)

func TestEraFigures(t *testing.T) {
	if got := eraFigureID("randwrite", 128); got != "era-overhead-randwrite-b128" {
		t.Errorf("eraFigureID = %q", got)
	}
	// The jobs are the other host figures' (same block sizes and iodepths).
	jobs := eraJobs()
	if len(jobs) != len(eraJobNames) {
		t.Fatalf("eraJobs = %+v, want %v", jobs, eraJobNames)
	}
	for i, j := range jobs {
		if j.Name != eraJobNames[i] || (j.RW != "randwrite" && j.RW != "write") {
			t.Errorf("eraJobs[%d] = %+v", i, j)
		}
	}
	hasDefault := false
	for _, bs := range eraBlockSizes {
		if err := (dm.Era{Metadata: "/dev/loop0", Origin: "/dev/dm-0", BlockSize: bs}).Validate(0); err != nil {
			t.Errorf("block size %d: %v", bs, err)
		}
		_, goal := eraGoal(bs).Met(0.5)
		if bs == plan.DefaultEraBlockSectors {
			hasDefault = true
			if !goal || eraGoal(bs).String() != "≥ 0.9" {
				t.Errorf("default block size: goal %s", eraGoal(bs))
			}
		} else if goal {
			t.Errorf("block size %d: goal %s, want reported", bs, eraGoal(bs))
		}
	}
	if !hasDefault {
		t.Errorf("eraBlockSizes %v lack the default %d", eraBlockSizes, plan.DefaultEraBlockSectors)
	}
}

func TestEraTable(t *testing.T) {
	got := eraTable("/dev/loop3", "/dev/mapper/lunferry-benchera-x", 32768, 1024).String()
	if want := "0 32768 era /dev/loop3 /dev/mapper/lunferry-benchera-x 1024\n"; got != want {
		t.Errorf("eraTable = %q, want %q", got, want)
	}
}
