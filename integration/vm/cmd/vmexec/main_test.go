package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/vm"
)

func TestGuestEnv(t *testing.T) {
	got := guestEnv([]string{"PATH=/bin", "PWD=/x", "OLDPWD=/y", "SHLVL=2", "_=/usr/bin/go",
		"LUNFERRY_VM_SUMMARY=/tmp/s", "LUNFERRY_LAB=1", "GOFLAGS=-count=1"})
	want := []string{"PATH=/bin", "LUNFERRY_LAB=1", "GOFLAGS=-count=1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("guestEnv = %q, want %q", got, want)
	}
}

func TestTimeout(t *testing.T) {
	t.Setenv("LUNFERRY_VM_TIMEOUT", "")
	if got := timeout([]string{"x.test", "-test.v", "-test.timeout=10m0s"}); got != 15*time.Minute {
		t.Errorf("from -test.timeout: %s", got)
	}
	if got := timeout([]string{"x.test"}); got != vm.DefaultTimeout {
		t.Errorf("default: %s", got)
	}
	if got := timeout([]string{"x.test", "-test.timeout=0s"}); got != noTimeout {
		t.Errorf("-test.timeout=0 (none): %s", got)
	}
	t.Setenv("LUNFERRY_VM_TIMEOUT", "90s")
	if got := timeout([]string{"x.test", "-test.timeout=10m0s"}); got != 90*time.Second {
		t.Errorf("env override: %s", got)
	}
}

func TestUsage(t *testing.T) {
	if code := run(nil); code != 2 {
		t.Errorf("no args: exit %d", code)
	}
	if code := run([]string{"--"}); code != 2 {
		t.Errorf("-- alone: exit %d", code)
	}
}

func TestKnownKernelBug(t *testing.T) {
	tail := "[   26.221662] BUG: kernel NULL pointer dereference, address: 0000000000000080\n" +
		"[   26.225375] RIP: 0010:iscsi_sw_tcp_release_conn+0x45/0x160 [iscsi_tcp]\n" +
		"[   26.225375] Kernel panic - not syncing: Fatal exception\n"
	if _, ok := knownKernelBug(&vm.Failure{Err: vm.ErrPanic, ConsoleTail: tail}); !ok {
		t.Error("the iscsi_tcp release panic is a known kernel bug")
	}
	other := "[    9.1] RIP: 0010:clone_map+0x12/0x80 [dm_clone]\nKernel panic - not syncing: Fatal exception\n"
	if bug, ok := knownKernelBug(&vm.Failure{Err: vm.ErrPanic, ConsoleTail: other}); ok {
		t.Errorf("a dm-clone panic taken for %q", bug)
	}
	if _, ok := knownKernelBug(&vm.Failure{Err: vm.ErrTimeout, ConsoleTail: tail}); ok {
		t.Error("a timeout is not a panic")
	}
	if _, ok := knownKernelBug(nil); ok {
		t.Error("no error")
	}
}
