package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/vmtest"
)

// EnvDeb names a directory holding the two packages of one `make deb`
// build (make test-vm builds them on the host into bin/e2e-deb). Without
// it the test builds them with scripts/packaging/build-deb.sh.
const EnvDeb = "LUNFERRY_E2E_DEB"

// debs are the packages of one build.
type debs struct {
	version, lunferry, dkms string
}

// findDebs returns the packages in $LUNFERRY_E2E_DEB, or builds them.
func findDebs(t *testing.T) debs {
	t.Helper()
	dir := os.Getenv(EnvDeb)
	if dir == "" {
		dir = t.TempDir()
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		cmd := exec.Command(filepath.Join(root, "scripts", "packaging", "build-deb.sh"), dir)
		cmd.Env = append(os.Environ(), "GO="+goBin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build-deb.sh: %v\n%s", err, out)
		}
		t.Logf("built the packages in %.1fs", time.Since(start).Seconds())
	}
	found, _ := filepath.Glob(filepath.Join(dir, "lunferry_*_amd64.deb"))
	if len(found) != 1 {
		t.Fatalf("%s: want the lunferry_*_amd64.deb of one build, found %v", dir, found)
	}
	d := debs{lunferry: found[0]}
	d.version = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(found[0]), "lunferry_"), "_amd64.deb")
	d.dkms = filepath.Join(dir, "lunferry-dm-clone-dkms_"+d.version+"_all.deb")
	if _, err := os.Stat(d.dkms); err != nil {
		t.Fatalf("no DKMS package beside %s: %v", d.lunferry, err)
	}
	return d
}

// requireThrowawayRoot refuses to go on unless / is the lab guest's
// overlay (writes stay in guest RAM): the test installs packages into it.
func requireThrowawayRoot(t *testing.T) {
	t.Helper()
	f, err := os.Open("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fstype := ""
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if fs := strings.Fields(sc.Text()); len(fs) > 2 && fs[1] == "/" {
			fstype = fs[2]
		}
	}
	if fstype != "overlay" {
		t.Fatalf("refusing to install packages: / is %q, not the lab guest's RAM overlay", fstype)
	}
}

// dpkg runs dpkg (non-interactive) and fails the test on error.
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("dpkg", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// manAutoUpdate is man-db's switch for its dpkg trigger, which rebuilds
// the whole manual index (most of a 30 s `dpkg -i` under emulation).
const manAutoUpdate = "/var/lib/man-db/auto-update"

// installDebs installs both packages with one dpkg -i (maintainer
// scripts included; each dpkg run reads the whole package database, tens
// of seconds under emulation) and purges them when the test ends. The
// lab's root already holds the DKMS package make deps installed (the
// lab's own dm_clone): this install upgrades or reinstalls it, its prerm
// removing that build from DKMS in the guest's RAM overlay only. The
// running kernel's headers are hidden meanwhile: the DKMS package's
// postinst then adds the module to DKMS and skips its build, as on a proxy
// without headers (the build did not end within 10 minutes under the
// lab's emulation; make package-check builds it through DKMS on the host).
func installDebs(t *testing.T, d debs) {
	t.Helper()
	if _, err := os.Stat(manAutoUpdate); err == nil {
		if err := os.Remove(manAutoUpdate); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(manAutoUpdate, nil, 0o644) })
	}
	t.Cleanup(func() {
		// After a failure before purgeDebs.
		if _, err := os.Stat("/var/lib/dpkg/info/lunferry.list"); err != nil {
			return
		}
		if out, err := exec.Command("dpkg", "--purge", "lunferry", "lunferry-dm-clone-dkms").CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
		}
	})
	kver, err := exec.Command("uname", "-r").Output()
	if err != nil {
		t.Fatal(err)
	}
	build := "/lib/modules/" + strings.TrimSpace(string(kver)) + "/build"
	if err := os.Rename(build, build+".lunferry-e2e"); err == nil {
		defer os.Rename(build+".lunferry-e2e", build)
	} else if !os.IsNotExist(err) {
		t.Fatal(err)
	}
	start := time.Now()
	out := dpkg(t, "-i", d.lunferry, d.dkms)
	t.Logf("dpkg -i %s %s (%.1fs):\n%s", filepath.Base(d.lunferry), filepath.Base(d.dkms), time.Since(start).Seconds(), out)
}

// installedFiles are the paths the unit and the admin rely on.
var installedFiles = []string{
	"/usr/sbin/lunferry",
	"/lib/systemd/system/lunferry.service",
	"/etc/lunferry/lunferry.env",
	"/usr/share/man/man8/lunferry.8.gz",
	"/usr/share/man/man8/lunferry-run.8.gz",
	"/usr/share/bash-completion/completions/lunferry",
	"/usr/share/zsh/vendor-completions/_lunferry",
}

// checkInstalled checks what dpkg installed: status and version, every
// file intact (dpkg --verify), the files above owned by the package, the
// env file a conffile, and the installed binary the package's build.
func checkInstalled(t *testing.T, d debs) {
	t.Helper()
	st := dpkg(t, "-s", "lunferry")
	if !strings.Contains(st, "Status: install ok installed\n") || !strings.Contains(st, "Version: "+d.version+"\n") {
		t.Fatalf("dpkg -s lunferry:\n%s", st)
	}
	if out := dpkg(t, "--verify", "lunferry"); out != "" {
		t.Fatalf("dpkg --verify lunferry:\n%s", out)
	}
	// dpkg -S reads the whole database; the package's list is its part.
	list, err := os.ReadFile("/var/lib/dpkg/info/lunferry.list")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range installedFiles {
		if !slices.Contains(strings.Split(string(list), "\n"), p) {
			t.Fatalf("dpkg lists no %s in the lunferry package:\n%s", p, list)
		}
	}
	out, err := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", "lunferry").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "/etc/lunferry/lunferry.env ") {
		t.Fatalf("conffiles of lunferry (want /etc/lunferry/lunferry.env): %v\n%s", err, out)
	}
	out, err = exec.Command("/usr/sbin/lunferry", "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), d.version) {
		t.Fatalf("/usr/sbin/lunferry --version (want %s): %v\n%s", d.version, err, out)
	}
}

// verifyUnit runs systemd-analyze verify on the installed unit: any
// message fails, as in make package-check.
func verifyUnit() error {
	out, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/lunferry.service").CombinedOutput()
	if err != nil || len(out) > 0 {
		return fmt.Errorf("systemd-analyze verify lunferry.service: %v\n%s", err, out)
	}
	return nil
}

// dkmsAdded checks the DKMS package's registration: its postinst added
// the module (the build was skipped, see installDebs).
func dkmsAdded(d debs) error {
	if st, err := dkmsStatus(); err != nil || st != "lunferry-dm-clone/"+d.version+": added" {
		return fmt.Errorf("dkms status after install: %q (%v), want lunferry-dm-clone/%s: added", st, err, d.version)
	}
	return nil
}

// purgeDebs purges both packages and checks what their maintainer scripts
// did: the module out of DKMS (prerm), the files and the conffile gone,
// the state directory /var/lib/lunferry kept.
func purgeDebs(t *testing.T, d debs) {
	t.Helper()
	const marker = "/var/lib/lunferry/volumes.e2e-marker"
	if err := os.MkdirAll(filepath.Dir(marker), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(marker)
	start := time.Now()
	out := dpkg(t, "--purge", "lunferry", "lunferry-dm-clone-dkms")
	t.Logf("dpkg --purge (%.1fs):\n%s", time.Since(start).Seconds(), out)
	if st, err := dkmsStatus(); err != nil || st != "" {
		t.Errorf("dkms status after purge: %q (%v)", st, err)
	}
	for _, p := range append(installedFiles, "/usr/src/lunferry-dm-clone-"+d.version) {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s after purge: %v", p, err)
		}
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("purge touched the state directory: %v", err)
	}
}

// dkmsStatus is `dkms status -m lunferry-dm-clone`.
func dkmsStatus() (string, error) {
	out, err := exec.Command("dkms", "status", "-m", "lunferry-dm-clone").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("dkms status: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// TestPackageInstall installs make deb's packages into the lab guest (its
// root is a RAM overlay) with dpkg -i, checks what landed where the unit
// expects it, the unit itself (systemd-analyze verify) and the DKMS
// package's registration, then starts the installed lunferry as the
// unit does (ExecStart, EnvironmentFile, NOTIFY_SOCKET and WATCHDOG_USEC
// as systemd sets them) over a volume whose export was removed: READY=1 once run restored it, WATCHDOG=1 every round, a scrape
// of the env file's metrics address passes promtool and shows the
// volume's step and hydration, and SIGTERM stops it cleanly; last, both
// packages are purged.
func TestPackageInstall(t *testing.T) {
	vmtest.Require(t)
	requireThrowawayRoot(t)
	start := time.Now()
	d := findDebs(t)
	installDebs(t, d)
	checkInstalled(t, d)
	u := readUnit(t, "/lib/systemd/system/lunferry.service")
	checkUnitPaths(t, u)
	// Slow under emulation and independent of the run below: meanwhile.
	var sideErr error
	sideDone := make(chan struct{})
	go func() {
		defer close(sideDone)
		t0 := time.Now()
		sideErr = errors.Join(verifyUnit(), dkmsAdded(d))
		t.Logf("systemd-analyze verify and dkms status: %.1fs", time.Since(t0).Seconds())
	}()
	t.Cleanup(func() { <-sideDone })
	s := runInstalled(t, u)
	<-sideDone
	if sideErr != nil {
		t.Fatal(sideErr)
	}
	// The scene's cleanup rolls the volume back with the e2e build.
	s.lf, _ = binaries(t)
	purgeDebs(t, d)
	t.Logf("package test body %.1fs", time.Since(start).Seconds())
}
