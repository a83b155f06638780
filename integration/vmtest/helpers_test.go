package vmtest

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestRandomName(t *testing.T) {
	re := regexp.MustCompile(`^lunferry-dm-[0-9a-f]{8}$`)
	a, b := RandomName("lunferry-dm"), RandomName("lunferry-dm")
	if !re.MatchString(a) || a == b {
		t.Fatalf("RandomName: %q %q", a, b)
	}
	if got := RandomName("x"); !strings.HasPrefix(got, "lunferry-x-") {
		t.Fatalf("RandomName(x) = %q, want lunferry-x-...", got)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLeaks(t *testing.T) {
	root := t.TempDir()
	sys, cfg := filepath.Join(root, "sys"), filepath.Join(root, "config")
	if got := Leaks(SysRoots{Sys: sys, ConfigFS: cfg}); len(got) != 0 {
		t.Fatalf("empty trees: %v", got)
	}
	write(t, filepath.Join(sys, "block/dm-0/dm/name"), "lunferry-old-1\n")
	write(t, filepath.Join(sys, "block/dm-1/dm/name"), "vg0-root\n") // not ours
	write(t, filepath.Join(sys, "class/iscsi_session/session3/targetname"), "iqn.2026-11.io.lab:old\n")
	write(t, filepath.Join(sys, "block/loop0/loop/backing_file"), "/tmp/x.img\n")
	for _, d := range []string{
		"target/core/fileio_0/lunferry-so-1",
		"target/core/fileio_0/other",
		"target/core/iblock_lunferry",
		"target/iscsi/iqn.2026-11.io.lunferry:t1/tpgt_1",
		"target/iscsi/iqn.2003-01.org.other:t2",
	} {
		if err := os.MkdirAll(filepath.Join(cfg, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(cfg, "target/iscsi/discovery_auth/enforce"), "0")
	want := []string{
		"configfs HBA core/iblock_lunferry",
		"configfs storage object core/fileio_0/lunferry-so-1",
		"configfs target iscsi/iqn.2026-11.io.lunferry:t1",
		"dm device lunferry-old-1 (dm-0)",
		"iSCSI session session3 to iqn.2026-11.io.lab:old",
		"loop device loop0 on /tmp/x.img",
	}
	if got := Leaks(SysRoots{Sys: sys, ConfigFS: cfg}); !reflect.DeepEqual(got, want) {
		t.Fatalf("Leaks:\n got %q\nwant %q", got, want)
	}
}

func TestLoopDeviceInVM(t *testing.T) {
	Require(t)
	dev := LoopDevice(t, 4<<20)
	b, err := os.ReadFile("/sys/block/" + filepath.Base(dev) + "/size")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "8192" {
		t.Fatalf("%s: %s sectors, want 8192", dev, got)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("lunferry"), 4096); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) { os.Exit(LeakCheck(m)) }

func TestDiskBySerial(t *testing.T) {
	sys := t.TempDir()
	write(t, filepath.Join(sys, "block/vda/serial"), "lunferry-d0")
	write(t, filepath.Join(sys, "block/vdb/serial"), "lunferry-d1\n")
	if got, err := diskBySerial(sys, "lunferry-d1"); err != nil || got != "vdb" {
		t.Fatalf("d1: %q %v", got, err)
	}
	if _, err := diskBySerial(sys, "lunferry-d2"); err == nil {
		t.Fatal("found a missing disk")
	}
}
