// Package vmtest tells a test whether it runs inside the lunferry lab VM and
// gives kernel tests the small helpers they share.
//
// Kernel tests live next to the code they test. Outside the VM they skip with
// a reason; inside the VM a missing kernel feature is a failure, not a skip.
package vmtest

import (
	"os"
	"testing"
)

// EnvInVM is set to "1" by the lab's guest init for every process it starts.
const EnvInVM = "LUNFERRY_IN_VM"

// EnvLab is set to "1" by `make test` for host-side tests that boot the lab
// themselves (multi-boot scenarios). When it is set, a lab that cannot boot
// is a failure.
const EnvLab = "LUNFERRY_LAB"

// InVM reports whether this process runs inside the lab VM.
func InVM() bool { return os.Getenv(EnvInVM) == "1" }

// Require skips t unless it runs inside the lab VM.
func Require(t testing.TB) {
	t.Helper()
	if !InVM() {
		t.Skip("kernel test: runs only inside the lab VM (make test-vm)")
	}
}

// RequireLab skips t unless the lab was asked for (LUNFERRY_LAB=1), for
// host-side tests that boot the VM themselves (integration/vm.Run). Inside
// the VM it always skips: those tests run in the host pass of `make test-vm`.
func RequireLab(t testing.TB) {
	t.Helper()
	if InVM() {
		t.Skip("lab test: boots the VM itself, runs on the host (make test-vm pass 2)")
	}
	if os.Getenv(EnvLab) != "1" {
		t.Skip("lab test: set LUNFERRY_LAB=1 (make test-vm) to boot the VM")
	}
}
