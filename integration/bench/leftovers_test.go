package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, v := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// What the scale group left before it took its volumes away (the whole
// run's later groups then found the guest's RAM full) is reported, and
// what was there before the group is not.
func TestLeftoversNameWhatAGroupLeft(t *testing.T) {
	root, dir := t.TempDir(), t.TempDir()
	writeTree(t, root, map[string]string{
		"sys/block/dm-0/dm/name": "lunferry-twohop\n",
		"sys/kernel/config/target/iscsi/iqn.2026-11.io.lunferry.lab:old/x": "",
		"sys/kernel/config/target/core/fileio_1/old/x":                     "",
		"sys/class/iscsi_session/session1/targetname":                      "iqn.2026-11.io.lunferry.lab:scratch\n",
	})
	writeTree(t, dir, map[string]string{"old.img": "", "runbook-1.json": ""})
	before := objects(root, dir)
	if got := leftovers(before, objects(root, dir)); len(got) != 0 {
		t.Fatalf("nothing changed, leftovers %v", got)
	}
	writeTree(t, root, map[string]string{
		"sys/block/dm-7/dm/name": "lunferry-s0\n",
		"sys/kernel/config/target/iscsi/iqn.2026-11.io.lunferry.lab:scale-old/x": "",
		"sys/kernel/config/target/core/fileio_9/labscale-old-0/x":                "",
		"sys/class/iscsi_session/session9/targetname":                            "iqn.2026-11.io.lunferry.lab:scale-old\n",
		"sys/block/loop3/loop/backing_file":                                      dir + "/state-scale/metadata/s0.clone\n",
	})
	writeTree(t, dir, map[string]string{"old-0.img": "", "state-scale/metadata/s0.clone": "", "runbook-2.json": ""})
	got := leftovers(before, objects(root, dir))
	want := []string{
		"dm lunferry-s0",
		"file old-0.img",
		"file state-scale/metadata/s0.clone",
		"loop " + dir + "/state-scale/metadata/s0.clone",
		"session iqn.2026-11.io.lunferry.lab:scale-old",
		"storage-object labscale-old-0",
		"target iqn.2026-11.io.lunferry.lab:scale-old",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("leftovers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	err := leftBehind("scale", got)
	if err == nil || !strings.Contains(err.Error(), "scale left behind dm lunferry-s0") {
		t.Fatalf("leftBehind: %v", err)
	}
	if leftBehind("era", nil) != nil {
		t.Fatal("nothing left is no failure")
	}
}
