package vm_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lunferry/lunferry/integration/vmtest"
)

// TestGuestLab checks, inside the VM, everything the lab promises to kernel
// tests: the modules, configfs, lo, iscsid, the initiator name and a
// writable /tmp.
func TestGuestLab(t *testing.T) {
	vmtest.Require(t)

	mods, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"dm_mod", "dm_clone", "dm_snapshot", "dm_era", "dm_persistent_data",
		"target_core_mod", "target_core_file", "target_core_iblock", "iscsi_target_mod",
		"iscsi_tcp", "sd_mod", "loop", "brd", "configfs"} {
		if !strings.Contains(string(mods), "\n"+m+" ") && !strings.HasPrefix(string(mods), m+" ") {
			t.Errorf("module %s not loaded", m)
		}
	}
	out, err := exec.Command("dmsetup", "targets").CombinedOutput()
	if err != nil {
		t.Fatalf("dmsetup targets: %v\n%s", err, out)
	}
	for _, target := range []string{"clone", "linear", "snapshot", "era"} {
		if !strings.Contains(string(out), target+" ") {
			t.Errorf("dm target %s missing:\n%s", target, out)
		}
	}
	if _, err := os.Stat("/sys/kernel/config/target/core"); err != nil {
		t.Errorf("LIO core not visible in configfs: %v", err)
	}
	flags, err := os.ReadFile("/sys/class/net/lo/flags")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(flags)), "9") {
		t.Errorf("lo not up: flags %q, %v", flags, err)
	}
	iname, err := os.ReadFile("/etc/iscsi/initiatorname.iscsi")
	if err != nil || strings.TrimSpace(string(iname)) != "InitiatorName=iqn.2026-11.io.lunferry.lab:proxy" {
		t.Errorf("initiator name: %q, %v", iname, err)
	}
	if err := exec.Command("iscsiadm", "-m", "session").Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 21 {
			t.Errorf("iscsid not answering: %v", err)
		}
	}
	f, err := os.CreateTemp(t.TempDir(), "w")
	if err != nil {
		t.Fatalf("writable /tmp: %v", err)
	}
	f.Close()
}
