package vmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Prefix starts the name of every kernel object lunferry and its tests
// create; LeakCheck looks for it.
const Prefix = "lunferry"

// RandomName returns prefix + "-" + 8 random hex digits. A prefix that does
// not start with "lunferry" gets "lunferry-" in front, so LeakCheck sees
// every object named this way.
func RandomName(prefix string) string {
	if !strings.HasPrefix(prefix, Prefix) {
		prefix = Prefix + "-" + prefix
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("vmtest: random name: %v", err))
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// Exec runs name with args and returns its combined output, failing t with
// that output when it exits non-zero.
func Exec(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// WaitFor polls cond every 50 ms until it returns true, failing t with what
// after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LoopDevice creates a sparse file of size bytes in t.TempDir(), attaches it
// to a free loop device and returns the device path (/dev/loopN). The device
// is detached at cleanup. Kernel tests only (needs root and the loop module).
func LoopDevice(t testing.TB, size int64) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "loop-*.img")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		t.Fatal(err)
	}
	f.Close()
	dev := strings.TrimSpace(Exec(t, "losetup", "--find", "--show", f.Name()))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v\n%s", dev, err, out)
		}
	})
	return dev
}

// LeakCheck runs the package's tests and then, inside the VM only, fails the
// package (non-zero exit) if kernel objects remain: device-mapper devices
// whose name starts with "lunferry", configfs target objects (storage
// objects, HBAs, fabric targets) with "lunferry" in their name, any iSCSI
// session, any attached loop device. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(vmtest.LeakCheck(m)) }
func LeakCheck(m *testing.M) int {
	code := m.Run()
	if !InVM() {
		return code
	}
	leaks := Leaks(SysRoots{})
	if len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "vmtest: kernel objects leaked by the tests (clean them up with t.Cleanup):\n")
		for _, l := range leaks {
			fmt.Fprintf(os.Stderr, "  %s\n", l)
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

// SysRoots are the trees Leaks reads; zero fields mean the real ones.
type SysRoots struct {
	// Sys is sysfs (default /sys).
	Sys string
	// ConfigFS is the configfs mount (default /sys/kernel/config).
	ConfigFS string
}

// Leaks lists the kernel objects LeakCheck complains about, sorted, one
// human-readable line each. It only reads sysfs and configfs.
func Leaks(r SysRoots) []string {
	if r.Sys == "" {
		r.Sys = "/sys"
	}
	if r.ConfigFS == "" {
		r.ConfigFS = "/sys/kernel/config"
	}
	var leaks []string
	dms, _ := filepath.Glob(filepath.Join(r.Sys, "block", "dm-*", "dm", "name"))
	for _, p := range dms {
		b, err := os.ReadFile(p)
		name := strings.TrimSpace(string(b))
		if err == nil && strings.HasPrefix(name, Prefix) {
			leaks = append(leaks, fmt.Sprintf("dm device %s (%s)", name, filepath.Base(filepath.Dir(filepath.Dir(p)))))
		}
	}
	target := filepath.Join(r.ConfigFS, "target")
	hbas, _ := os.ReadDir(filepath.Join(target, "core"))
	for _, hba := range hbas {
		if !hba.IsDir() {
			continue
		}
		if strings.Contains(hba.Name(), Prefix) {
			leaks = append(leaks, "configfs HBA core/"+hba.Name())
		}
		sos, _ := os.ReadDir(filepath.Join(target, "core", hba.Name()))
		for _, so := range sos {
			if so.IsDir() && strings.Contains(so.Name(), Prefix) {
				leaks = append(leaks, "configfs storage object core/"+hba.Name()+"/"+so.Name())
			}
		}
	}
	fabrics, _ := os.ReadDir(target)
	for _, fab := range fabrics {
		if !fab.IsDir() || fab.Name() == "core" {
			continue
		}
		tgts, _ := os.ReadDir(filepath.Join(target, fab.Name()))
		for _, tg := range tgts {
			if tg.IsDir() && strings.Contains(tg.Name(), Prefix) {
				leaks = append(leaks, "configfs target "+fab.Name()+"/"+tg.Name())
			}
		}
	}
	sessions, _ := filepath.Glob(filepath.Join(r.Sys, "class", "iscsi_session", "session*"))
	for _, s := range sessions {
		tn, _ := os.ReadFile(filepath.Join(s, "targetname"))
		leaks = append(leaks, fmt.Sprintf("iSCSI session %s to %s", filepath.Base(s), strings.TrimSpace(string(tn))))
	}
	loops, _ := filepath.Glob(filepath.Join(r.Sys, "block", "loop*", "loop", "backing_file"))
	for _, p := range loops {
		b, _ := os.ReadFile(p)
		leaks = append(leaks, fmt.Sprintf("loop device %s on %s", filepath.Base(filepath.Dir(filepath.Dir(p))), strings.TrimSpace(string(b))))
	}
	sort.Strings(leaks)
	return leaks
}

// VirtioDisk returns /dev/vdX of the n-th disk in vm.Options.Disks (its
// serial is "lunferry-d<n>"), found through sysfs. Kernel tests only.
func VirtioDisk(t testing.TB, n int) string {
	t.Helper()
	name, err := diskBySerial("/sys", fmt.Sprintf("lunferry-d%d", n))
	if err != nil {
		t.Fatal(err)
	}
	return "/dev/" + name
}

// diskBySerial finds the block device whose /sys/block/*/serial is serial.
func diskBySerial(sys, serial string) (string, error) {
	serials, _ := filepath.Glob(filepath.Join(sys, "block", "*", "serial"))
	for _, p := range serials {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == serial {
			return filepath.Base(filepath.Dir(p)), nil
		}
	}
	return "", fmt.Errorf("vmtest: no disk with serial %s in %s/block (pass it in vm.Options.Disks)", serial, sys)
}
