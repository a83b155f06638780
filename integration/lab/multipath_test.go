package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeSession makes a sysfs tree with one iSCSI session of initiator iqn
// and its disk, and returns the disk's devpath.
func fakeSession(t *testing.T, sys, host, session, disk, iqn string) string {
	t.Helper()
	sess := filepath.Join(sys, "devices", "platform", host, session)
	attr := filepath.Join(sess, "iscsi_session", session)
	devpath := filepath.Join("/devices", "platform", host, session, "target3:0:0", "3:0:0:0", "block", disk)
	for _, d := range []string{attr, filepath.Join(sys, devpath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(attr, "initiatorname"), []byte(iqn+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return devpath
}

func TestHostPathScriptTagsOnlyTheHostsDisks(t *testing.T) {
	sys := t.TempDir()
	m := &Multipath{Dir: t.TempDir(), HostIQN: HostIQN}
	script := filepath.Join(m.Dir, "host-path")
	if err := os.WriteFile(script, []byte(m.HostPathScript()), 0o755); err != nil {
		t.Fatal(err)
	}
	hostDisk := fakeSession(t, sys, "host3", "session1", "sdb", HostIQN)
	proxyDisk := fakeSession(t, sys, "host4", "session2", "sdc", "iqn.2026-11.io.lunferry.lab:proxy")
	for devpath, want := range map[string]string{hostDisk: HostPathProperty + "=1", proxyDisk: "", "/devices/virtual/block/loop0": ""} {
		cmd := exec.Command("/bin/sh", script, devpath)
		cmd.Env = []string{"LUNFERRY_LAB_SYSFS=" + sys}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("host-path %s: %q (err %v), want %q", devpath, out, err, want)
		}
	}
}

func TestConfAndRulesNameTheHostProperty(t *testing.T) {
	m := &Multipath{Dir: "/lab/multipath", HostIQN: HostIQN}
	if c := m.Conf(); !strings.Contains(c, `property "^`+HostPathProperty+`$"`) || !strings.Contains(c, "no_path_retry queue") {
		t.Errorf("multipath.conf does not blacklist all but the host's disks, or does not queue:\n%s", c)
	}
	// The others get a WWID of their own and nothing of scsi_id's:
	// multipath-tools skips the property blacklist of a disk without
	// ID_SERIAL, its built-in exception admits every disk with an ID_WWN*
	// property, and it adopts an orphan of the map's WWID into the map.
	r := m.Rules()
	host := strings.Index(r, `IMPORT{program}="/bin/sh /lab/multipath/host-path %p"`)
	others := strings.Index(r, `ENV{`+HostPathProperty+`}!="1", ENV{ID_SERIAL}="lunferry-lab-not-host-%k", GOTO="lunferry_lab_end"`)
	id := strings.Index(r, `IMPORT{program}="scsi_id --whitelisted --export --device=$devnode"`)
	if host < 0 || others < host || id < others {
		t.Errorf("udev rules: want host-path, then the others' own ID_SERIAL and out, then scsi_id:\n%s", r)
	}
}

func TestParsePaths(t *testing.T) {
	// `multipathd show paths raw format "%d %m %t %T"`, multipath-tools
	// 0.9.4: a path in a map, an orphan, a failed one.
	out := "sdb 36001405a1b2 active ready\nsdd [orphan] undef ready\nsde 36001405a1b2 failed faulty\n"
	want := []PathState{{"sdb", "36001405a1b2", "active", "ready"}, {"sdd", "[orphan]", "undef", "ready"}, {"sde", "36001405a1b2", "failed", "faulty"}}
	got := ParsePaths(out)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParsePaths:\n got %+v\nwant %+v", got, want)
	}
	if !got[0].Serving() || got[1].Serving() || got[2].Serving() {
		t.Errorf("Serving: %v %v %v, want true false false", got[0].Serving(), got[1].Serving(), got[2].Serving())
	}
}

func TestMapsFromSysfs(t *testing.T) {
	sys := t.TempDir()
	mk := func(dm, uuid, name string, slaves ...string) {
		for _, d := range append([]string{"dm"}, slaves...) {
			p := filepath.Join(sys, "block", dm, "dm")
			if d != "dm" {
				p = filepath.Join(sys, "block", dm, "slaves", d)
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(sys, "block", dm, "dm", "uuid"), []byte(uuid+"\n"), 0o644)
		os.WriteFile(filepath.Join(sys, "block", dm, "dm", "name"), []byte(name+"\n"), 0o644)
	}
	mk("dm-0", "", "lunferry-vol1", "sdc")
	mk("dm-1", "mpath-36001405a1b2", "36001405a1b2", "sdd", "sdb")
	got, err := Maps(sys)
	if err != nil {
		t.Fatal(err)
	}
	want := []Map{{Name: "36001405a1b2", Dev: "/dev/dm-1", Paths: []string{"sdb", "sdd"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Maps: got %+v, want %+v", got, want)
	}
	if _, ok, _ := MapOf(sys, "sdc"); ok {
		t.Error("MapOf: sdc (under a linear device) is in no multipath map")
	}
	if m, ok, _ := MapOf(sys, "sdd"); !ok || m.Name != "36001405a1b2" {
		t.Errorf("MapOf(sdd) = %+v %v", m, ok)
	}
}

func TestStartRefusedOutsideTheVM(t *testing.T) {
	t.Setenv("LUNFERRY_IN_VM", "")
	m := &Multipath{Dir: t.TempDir(), HostIQN: HostIQN, ConfFile: filepath.Join(t.TempDir(), "multipath.conf")}
	if err := m.Start(); err == nil || !strings.Contains(err.Error(), "only in the lab VM") {
		t.Fatalf("Start outside the VM: %v", err)
	}
}
