package vm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/vm"
	"github.com/lunferry/lunferry/integration/vmtest"
)

// These tests boot the lab from the host (make test-vm, pass 2). Each boot
// takes about 10 s under emulation.

func TestRunExitStatusOutputAndDisks(t *testing.T) {
	vmtest.RequireLab(t)
	dir := t.TempDir()
	disks := []string{filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")}
	for _, d := range disks {
		if err := os.WriteFile(d, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(d, 16<<20); err != nil {
			t.Fatal(err)
		}
	}
	var live bytes.Buffer
	// The background sleep keeps the output open after the shell exits: the
	// run must still end as soon as the shell does.
	script := `echo "to stdout"; echo "to stderr" >&2; pwd; echo "FOO=$FOO IN_VM=$LUNFERRY_IN_VM"
cat /sys/block/vda/serial /sys/block/vdb/serial; echo
printf lunferry-disk-a | dd of=/dev/vda bs=512 seek=2048 conv=fsync 2>/dev/null
sleep 1000 &
exit 7`
	res, err := vm.Run(context.Background(), vm.Options{
		Command: []string{"sh", "-c", script},
		Dir:     "/usr",
		Env:     []string{"FOO=bar baz"},
		Disks:   disks,
		Output:  &live,
		Timeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Banner())
	if res.ExitCode != 7 {
		t.Errorf("exit code %d, want 7\n%s", res.ExitCode, res.Output)
	}
	want := "to stdout\nto stderr\n/usr\nFOO=bar baz IN_VM=1\nlunferry-d0lunferry-d1\n"
	if string(res.Output) != want {
		t.Errorf("output %q, want %q", res.Output, want)
	}
	if live.String() != want {
		t.Errorf("live output %q, want %q", live.String(), want)
	}
	if !strings.HasSuffix(res.Kernel, "-amd64") || !strings.HasPrefix(res.DMClone, "v") ||
		!strings.Contains(res.DMCloneModule, "/lib/modules/"+res.Kernel+"/updates/dkms/") {
		t.Errorf("banner: kernel %q dm-clone %q from %q (want DKMS's module)", res.Kernel, res.DMClone, res.DMCloneModule)
	}
	if res.Boot <= 0 || res.Boot > res.Wall {
		t.Errorf("boot %s wall %s", res.Boot, res.Wall)
	}
	if _, err := os.Stat(res.Share); !os.IsNotExist(err) {
		t.Errorf("share %s left behind: %v", res.Share, err)
	}
	b, err := os.ReadFile(disks[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b[2048*512 : 2048*512+15]); got != "lunferry-disk-a" {
		t.Errorf("disk image after the run: %q", got)
	}
}

func TestRunPowerCutKeepsDisks(t *testing.T) {
	vmtest.RequireLab(t)
	disk := filepath.Join(t.TempDir(), "d.img")
	if err := os.WriteFile(disk, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := vm.Run(context.Background(), vm.Options{
		Command:  []string{"sh", "-c", "printf boot1 | dd of=/dev/vda conv=fsync 2>/dev/null; echo WRITTEN; sleep 600; echo NOT-KILLED"},
		Disks:    []string{disk},
		Timeout:  3 * time.Minute,
		KillWhen: func(line string) bool { return line == "WRITTEN" },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.PowerCut || res.ExitCode != -1 || strings.Contains(string(res.Output), "NOT-KILLED") {
		t.Fatalf("power cut: %+v, output %q", res, res.Output)
	}
	if d := time.Since(start); d > 2*time.Minute {
		t.Fatalf("power cut took %s", d)
	}
	// Second boot: this very test binary runs in the guest (the host's /tmp
	// is visible there), the way multi-boot scenarios run Go code per boot.
	res, err = vm.Run(context.Background(), vm.Options{
		Command: []string{os.Args[0], "-test.run=^TestGuestHelperReadsDisk$", "-test.v"},
		Env:     append(os.Environ(), "LUNFERRY_VM_HELPER=read-disk"),
		Disks:   []string{disk},
		Timeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(string(res.Output), "DISK=boot1\n") {
		t.Fatalf("second boot (exit %d):\n%s", res.ExitCode, res.Output)
	}
}

// TestGuestHelperReadsDisk is run in the guest by TestRunPowerCutKeepsDisks.
func TestGuestHelperReadsDisk(t *testing.T) {
	if os.Getenv("LUNFERRY_VM_HELPER") != "read-disk" {
		t.Skip("helper: runs in the guest for TestRunPowerCutKeepsDisks")
	}
	vmtest.Require(t)
	f, err := os.Open(vmtest.VirtioDisk(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 5)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("DISK=%s\n", b)
}

func TestRunKernelPanicIsAFailure(t *testing.T) {
	vmtest.RequireLab(t)
	start := time.Now()
	res, err := vm.Run(context.Background(), vm.Options{
		Command: []string{"sh", "-c", "echo 1 >/proc/sys/kernel/sysrq; echo c >/proc/sysrq-trigger; sleep 600"},
		Timeout: 3 * time.Minute,
	})
	if !errors.Is(err, vm.ErrPanic) {
		t.Fatalf("err = %v, want ErrPanic", err)
	}
	if !strings.Contains(err.Error(), "Kernel panic - not syncing") || res == nil || res.ExitCode != -1 {
		t.Fatalf("panic report lacks the console tail: %v", err)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Fatalf("panic detected after %s", d)
	}
}

func TestRunTimeoutKillsQemu(t *testing.T) {
	vmtest.RequireLab(t)
	start := time.Now()
	res, err := vm.Run(context.Background(), vm.Options{
		Command: []string{"sleep", "600"},
		Timeout: 40 * time.Second,
	})
	if !errors.Is(err, vm.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	t.Logf("boot %s, blocked-task dump in the tail: %v", res.Boot, strings.Contains(res.ConsoleTail, "Show Blocked State"))
	// The guest dumps its blocked tasks 15 s before the timeout, if it had
	// booted by then (under heavy load it may not have).
	if res.Boot > 0 && res.Boot < 20*time.Second && !strings.Contains(res.ConsoleTail, "Show Blocked State") {
		t.Errorf("no blocked-task dump in the console tail:\n%s", res.ConsoleTail)
	}
}

func TestRunBootFailure(t *testing.T) {
	vmtest.RequireLab(t)
	lab, err := vm.OpenLab("")
	if err != nil {
		t.Fatal(err)
	}
	lab.Kernel = "/etc/hostname" // not a kernel: qemu refuses to start it
	_, err = vm.Run(context.Background(), vm.Options{Lab: lab, Command: []string{"true"}, Timeout: time.Minute})
	if !errors.Is(err, vm.ErrBoot) || !strings.Contains(err.Error(), "qemu:") {
		t.Fatalf("err = %v, want ErrBoot with qemu's message", err)
	}
}
