// Package integration holds lunferry's end-to-end tests. They run inside the
// lab VM (make test-vm) and prove the kernel stack the tool drives.
package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/integration/vmtest"
)

func TestMain(m *testing.M) { os.Exit(vmtest.LeakCheck(m)) }

const (
	configfsTarget = "/sys/kernel/config/target"
	lunSize        = 32 << 20 // bytes per array LUN
	sector         = 512
)

// array is one fake SAN array: a LIO iSCSI target with a fileio backstore on
// tmpfs, built with raw configfs writes (independent of package lio).
type array struct {
	iqn, portal, backing string
	hba, so              string // configfs dirs under core/
	dev                  string // /dev/sdX seen by the initiator
}

// TestSmokeCloneOverISCSI proves the whole stack in the lab: two LIO iSCSI
// targets ("old" and "new" arrays), an open-iscsi login to each from the same
// guest, their disks found through sysfs, a dm-clone device over them, and
// data written and read back with checksums before, during and after
// hydration. The old LUN is never written.
func TestSmokeCloneOverISCSI(t *testing.T) {
	vmtest.Require(t)
	start := time.Now()
	step := func(what string) { t.Logf("%6.2fs %s", time.Since(start).Seconds(), what) }

	tmp := t.TempDir()
	mustRun(t, "mount", "-t", "tmpfs", "-o", "size=128m", "lunferry-smoke", tmp)
	t.Cleanup(func() { _ = unix.Unmount(tmp, unix.MNT_DETACH) })

	initiator := initiatorName(t)
	suffix := strings.TrimPrefix(vmtest.RandomName("lunferry"), "lunferry-")
	old := newArray(t, "old", suffix, "127.0.0.1:3260", filepath.Join(tmp, "old.img"), initiator)
	nw := newArray(t, "new", suffix, "127.0.0.2:3260", filepath.Join(tmp, "new.img"), initiator)
	step("two LIO targets up")

	old.dev = login(t, old)
	nw.dev = login(t, nw)
	step(fmt.Sprintf("logged in: old=%s new=%s", old.dev, nw.dev))

	// The old array holds the application's data.
	data := make([]byte, lunSize)
	fill(data, 1)
	writeAt(t, old.dev, data, 0)
	sumOld := sum(data)
	step("wrote " + strconv.Itoa(lunSize>>20) + " MiB to the old LUN")

	meta := vmtest.LoopDevice(t, 4<<20)
	name := vmtest.RandomName("lunferry-smoke")
	sectors := lunSize / sector
	// clone <metadata dev> <destination dev> <source dev> <region size>
	//       <#feature args> [features] <#core args> [key value]...
	// Start with hydration off so the first read is served from the source.
	table := fmt.Sprintf("0 %d clone %s %s %s 128 1 no_hydration 2 hydration_threshold 64", sectors, meta, nw.dev, old.dev)
	mustRun(t, "dmsetup", "create", "--noudevsync", name, "--table", table)
	t.Cleanup(func() { removeDM(t, name) })
	dm := dmDevice(t, name)
	step("clone device " + name + " = " + dm)

	if got := readSum(t, dm, 0, lunSize); got != sumOld {
		t.Fatalf("clone before hydration reads %s, old LUN has %s", got, sumOld)
	}
	if h, total := cloneProgress(t, name); h != 0 || total != lunSize/(128*sector) {
		t.Fatalf("no_hydration: %d/%d regions hydrated, want 0/%d", h, total, lunSize/(128*sector))
	}
	step("clone reads the old data with hydration off")

	// The application writes through the clone while it hydrates.
	patch := make([]byte, 1<<20)
	fill(patch, 2)
	const patchOff = 4 << 20
	writeAt(t, dm, patch, patchOff)
	copy(data[patchOff:], patch)
	want := sum(data)
	mustRun(t, "dmsetup", "message", name, "0", "hydration_batch_size", "16")
	mustRun(t, "dmsetup", "message", name, "0", "enable_hydration")
	if got := readSum(t, dm, 0, lunSize); got != want {
		t.Fatalf("clone during hydration reads %s, want %s", got, want)
	}
	vmtest.WaitFor(t, 180*time.Second, "hydration", func() bool {
		h, total := cloneProgress(t, name)
		return h == total
	})
	step("hydrated")

	if got := readSum(t, dm, 0, lunSize); got != want {
		t.Fatalf("clone after hydration reads %s, want %s", got, want)
	}
	dropCaches(t)
	if got := readSum(t, nw.dev, 0, lunSize); got != want {
		t.Fatalf("new LUN after hydration reads %s, want %s", got, want)
	}
	if got := readSum(t, nw.backing, 0, lunSize); got != want {
		t.Fatalf("new array's backing file has %s, want %s", got, want)
	}
	if got := readSum(t, old.backing, 0, lunSize); got != sumOld {
		t.Fatalf("old array's backing file changed: %s, want %s", got, sumOld)
	}
	step("checksums match on the clone, the new LUN and its backing file; old LUN untouched")
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	return vmtest.Exec(t, name, args...)
}

func initiatorName(t *testing.T) string {
	b, err := os.ReadFile("/etc/iscsi/initiatorname.iscsi")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "InitiatorName="); ok {
			return v
		}
	}
	t.Fatal("no InitiatorName in /etc/iscsi/initiatorname.iscsi")
	return ""
}

func writeFile(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		t.Fatalf("configfs: write %q to %s: %v", value, path, err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatalf("configfs: %v", err)
	}
}

// newArray builds target iqn.2026-11.io.lunferry.lab:smoke-<role>-<suffix>
// with one fileio LUN of lunSize bytes on backing, a portal and an ACL for
// initiator. Teardown (t.Cleanup) follows the order that leaves configfs
// empty: tpg disable, mapped LUN link, ACL, LUN link and dir, portal, tpg,
// target, storage object, HBA.
func newArray(t *testing.T, role, suffix, portal, backing, initiator string) *array {
	t.Helper()
	a := &array{
		iqn:     "iqn.2026-11.io.lunferry.lab:smoke-" + role + "-" + suffix,
		portal:  portal,
		backing: backing,
		hba:     filepath.Join(configfsTarget, "core", fmt.Sprintf("fileio_%d", 1000+rand.IntN(1<<20))),
	}
	a.so = filepath.Join(a.hba, "lunferry-smoke-"+role+"-"+suffix)
	f, err := os.Create(backing)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	var undo []func() error
	t.Cleanup(func() {
		for i := len(undo) - 1; i >= 0; i-- {
			if err := undo[i](); err != nil {
				t.Errorf("teardown %s: %v", a.iqn, err)
			}
		}
	})
	rmdir := func(p string) { undo = append(undo, func() error { return os.Remove(p) }) }

	mkdir(t, a.hba)
	rmdir(a.hba)
	mkdir(t, a.so)
	rmdir(a.so)
	writeFile(t, filepath.Join(a.so, "control"), fmt.Sprintf("fd_dev_name=%s,fd_dev_size=%d", backing, lunSize))
	writeFile(t, filepath.Join(a.so, "enable"), "1")

	tgt := filepath.Join(configfsTarget, "iscsi", a.iqn)
	tpg := filepath.Join(tgt, "tpgt_1")
	if err := os.MkdirAll(tgt, 0o755); err != nil { // creates iscsi/ (loads the fabric) too
		t.Fatalf("configfs: %v", err)
	}
	rmdir(tgt)
	mkdir(t, tpg)
	rmdir(tpg)
	lun := filepath.Join(tpg, "lun", "lun_0")
	mkdir(t, lun)
	rmdir(lun)
	lunLink := filepath.Join(lun, "lunferry_so")
	if err := os.Symlink(a.so, lunLink); err != nil {
		t.Fatalf("configfs: %v", err)
	}
	rmdir(lunLink)
	np := filepath.Join(tpg, "np", portal)
	mkdir(t, np)
	rmdir(np)
	acl := filepath.Join(tpg, "acls", initiator)
	mkdir(t, acl)
	rmdir(acl)
	mlun := filepath.Join(acl, "lun_0")
	mkdir(t, mlun)
	rmdir(mlun)
	mlunLink := filepath.Join(mlun, "lunferry_lun")
	if err := os.Symlink(lun, mlunLink); err != nil {
		t.Fatalf("configfs: %v", err)
	}
	rmdir(mlunLink)
	writeFile(t, filepath.Join(tpg, "attrib", "authentication"), "0")
	writeFile(t, filepath.Join(tpg, "enable"), "1")
	undo = append(undo, func() error { return os.WriteFile(filepath.Join(tpg, "enable"), []byte("0"), 0o644) })
	return a
}

// login creates a node record for a, logs in and returns the SCSI disk the
// session brought, found through sysfs (no udev in the lab).
func login(t *testing.T, a *array) string {
	t.Helper()
	mustRun(t, "iscsiadm", "-m", "node", "-o", "new", "-T", a.iqn, "-p", a.portal)
	t.Cleanup(func() {
		if out, err := exec.Command("iscsiadm", "-m", "node", "-o", "delete", "-T", a.iqn, "-p", a.portal).CombinedOutput(); err != nil {
			t.Errorf("iscsiadm delete node: %v\n%s", err, out)
		}
	})
	mustRun(t, "iscsiadm", "-m", "node", "-T", a.iqn, "-p", a.portal, "--login")
	t.Cleanup(func() {
		if out, err := exec.Command("iscsiadm", "-m", "node", "-T", a.iqn, "-p", a.portal, "--logout").CombinedOutput(); err != nil {
			t.Errorf("iscsiadm logout: %v\n%s", err, out)
		}
	})
	var disk string
	// The disk's link under the session can appear before its own sysfs
	// directory has its attributes (CI: /sys/block/sdb/dev missing).
	vmtest.WaitFor(t, 30*time.Second, "the SCSI disk of "+a.iqn, func() bool {
		disk = sessionDisk(a.iqn)
		if disk == "" {
			return false
		}
		_, err := os.Stat("/sys/block/" + disk + "/dev")
		return err == nil
	})
	dev := "/dev/" + disk
	if _, err := os.Stat(dev); err != nil {
		mknod(t, disk)
	}
	b, err := os.ReadFile("/sys/block/" + disk + "/size")
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(lunSize/sector) {
		t.Fatalf("%s: size %q sectors, want %d (%v)", dev, b, lunSize/sector, err)
	}
	return dev
}

// sessionDisk maps a target name to its disk:
// /sys/class/iscsi_session/sessionN/targetname, then
// sessionN/device/target*/*/block/sdX.
func sessionDisk(iqn string) string {
	sessions, _ := filepath.Glob("/sys/class/iscsi_session/session*")
	for _, s := range sessions {
		b, err := os.ReadFile(filepath.Join(s, "targetname"))
		if err != nil || strings.TrimSpace(string(b)) != iqn {
			continue
		}
		blocks, _ := filepath.Glob(filepath.Join(s, "device", "target*", "*", "block", "*"))
		if len(blocks) == 1 {
			return filepath.Base(blocks[0])
		}
	}
	return ""
}

func mknod(t *testing.T, disk string) {
	t.Helper()
	b, err := os.ReadFile("/sys/block/" + disk + "/dev")
	if err != nil {
		t.Fatal(err)
	}
	var maj, min uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err != nil {
		t.Fatalf("parse %s/dev %q: %v", disk, b, err)
	}
	// devtmpfs may make it between the caller's Stat and here.
	if err := unix.Mknod("/dev/"+disk, unix.S_IFBLK|0o600, int(unix.Mkdev(maj, min))); err != nil && !errors.Is(err, unix.EEXIST) {
		t.Fatalf("mknod /dev/%s: %v", disk, err)
	}
}

// dmDevice finds /dev/dm-N of a dm device by name through sysfs.
func dmDevice(t *testing.T, name string) string {
	t.Helper()
	names, _ := filepath.Glob("/sys/block/dm-*/dm/name")
	for _, p := range names {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(p)))
		}
	}
	t.Fatalf("dm device %s not in /sys/block", name)
	return ""
}

func removeDM(t *testing.T, name string) {
	var out []byte
	var err error
	for i := 0; i < 20; i++ { // a reader may still hold it for a moment
		if out, err = exec.Command("dmsetup", "remove", "--noudevsync", name).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("dmsetup remove %s: %v\n%s", name, err, out)
}

// cloneProgress returns hydrated and total regions from `dmsetup status`:
// "<start> <len> clone <metadata block size> <used>/<total metadata blocks>
// <region size> <hydrated>/<total regions> <hydrating> ...". The pair is
// the 4th field after "clone" (the 3rd is the region size).
func cloneProgress(t *testing.T, name string) (hydrated, total int) {
	t.Helper()
	f := strings.Fields(mustRun(t, "dmsetup", "status", name))
	if len(f) < 7 || f[2] != "clone" {
		t.Fatalf("dmsetup status %s: unexpected %q", name, f)
	}
	if _, err := fmt.Sscanf(f[6], "%d/%d", &hydrated, &total); err != nil {
		t.Fatalf("dmsetup status %s: regions %q: %v", name, f[6], err)
	}
	return hydrated, total
}

func fill(b []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x6c756e66))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
}

func readSum(t *testing.T, path string, off, n int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func dropCaches(t *testing.T) {
	t.Helper()
	unix.Sync()
	writeFile(t, "/proc/sys/vm/drop_caches", "3")
}
