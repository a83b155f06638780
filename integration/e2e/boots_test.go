package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vm"
	"github.com/lunferry/lunferry/integration/vmtest"
)

// labBoot is one boot of a multi-boot lab test: the guest test runs with
// the boot's name in its environment; cut, when set, is a console line
// that cuts the power (qemu killed), otherwise the boot must end with
// exit 0.
type labBoot struct {
	name string
	cut  string
}

// runBoots boots the lab once per boot over the same disks, running the
// guest test guestTest (this test binary, `-test.run=^guestTest$`) with
// envVar set to the boot's name and EnvBin to bin. It fails the test on a
// boot that fails, ends before its power cut, or whose kernel reported
// errors, and returns the results.
func runBoots(t *testing.T, bin string, disks []string, guestTest, envVar string, timeout time.Duration, boots ...labBoot) []*vm.Result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out []*vm.Result
	for _, b := range boots {
		t0 := time.Now()
		var kill func(string) bool
		if b.cut != "" {
			kill = func(line string) bool { return strings.Contains(line, b.cut) }
		}
		res, err := vm.Run(context.Background(), vm.Options{
			Disks:    disks,
			Command:  []string{exe, "-test.run=^" + guestTest + "$", "-test.v", "-test.count=1"},
			Env:      append(os.Environ(), envVar+"="+b.name, EnvBin+"="+bin),
			Output:   &logWriter{t: t},
			KillWhen: kill,
			Timeout:  timeout,
		})
		if err != nil {
			t.Fatalf("boot %s: %v", b.name, err)
		}
		t.Logf("boot %s: %s (%.0fs)", b.name, res.Banner(), time.Since(t0).Seconds())
		if len(res.KernelErrors) > 0 {
			t.Errorf("boot %s: the lab kernel reported errors:\n%s", b.name, strings.Join(res.KernelErrors, "\n"))
		}
		switch {
		case kill != nil && !res.PowerCut:
			t.Fatalf("boot %s ended (exit %d) without reaching the power cut (%q)", b.name, res.ExitCode, b.cut)
		case kill == nil && res.ExitCode != 0:
			t.Fatalf("boot %s: exit %d", b.name, res.ExitCode)
		}
		out = append(out, res)
	}
	return out
}

// stateDiskScene mounts the state disk of a multi-boot test (made on the
// first boot) and builds the scene over the virtio disks (old, new,
// state), its arrays brought (back) up.
func stateDiskScene(t *testing.T, first bool) *scene {
	oldDev, newDev, stateDev := vmtest.VirtioDisk(t, 0), vmtest.VirtioDisk(t, 1), vmtest.VirtioDisk(t, 2)
	const mnt = "/mnt/lunferry-e2e-state"
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if first {
		vmtest.Exec(t, "mkfs.ext4", "-q", "-F", stateDev)
	}
	vmtest.Exec(t, "mount", "-t", "ext4", stateDev, mnt)
	t.Cleanup(func() { lab.ExecOut("umount", mnt) }) // registered first: runs last
	cfgPath := filepath.Join(mnt, "lab", "lab.json")
	var cfg *lab.Config
	if first {
		cfg = lab.DefaultConfig(filepath.Join(mnt, "lab"), oldDev, 0, newDev, 0)
		cfg.Host.Mount = "/mnt/lunferry-e2e-host"
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if cfg, err = lab.LoadConfig(cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	return sceneFrom(t, cfg, cfgPath, filepath.Join(mnt, "lunferry"), "")
}
