package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// netappLUN is a NetApp ONTAP LUN's identity as a host sees it: NAA 6
// under NetApp's OUI 00-a0-98 whose vendor part is the hex of the ASCII
// unit serial "80BxS+QnRQ9n". A lab array, being LIO, builds its NAA from
// the hex digits of its unit serial, so it gets those digits as serial.
var netappLUN = lab.LUNIdentity{CompanyID: 0x00a098, UnitSerial: "038304278532b516e52513969",
	Vendor: "NETAPP", Product: "LUN C-Mode", Revision: "9800"}

// arraySerial returns a unit serial shaped as the UUIDs targetcli gives
// storage objects. A lab array without one is unlike any real array: LIO
// then lists no VPD pages and shows no NAA designator, and the host has
// no WWID at all.
func arraySerial(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// diskIdentity is what a host sees of a SCSI disk in sysfs: what
// dm-multipath, udev's by-id links, LVM filters and filesystems key on.
type diskIdentity struct {
	WWID, Vendor, Model, Rev string
	Logical, Physical        string
}

func (d diskIdentity) String() string {
	return fmt.Sprintf("wwid %s, vendor %q, model %q, rev %q, logical/physical block size %s/%s",
		d.WWID, d.Vendor, d.Model, d.Rev, d.Logical, d.Physical)
}

// hostSees rescans the host's disk behind its session to iqn (so that
// sysfs holds the VPD pages and capacity the target serves now, not those
// cached at login) and reads its identity.
func (s *scene) hostSees(iqn string) diskIdentity {
	s.t.Helper()
	disk := s.cfg.Host.SessionDisk(iqn)
	if disk == "" {
		s.t.Fatalf("the host has no disk behind %s", iqn)
	}
	dev := filepath.Join("/sys/block", disk, "device")
	if err := os.WriteFile(filepath.Join(dev, "rescan"), []byte("1"), 0o200); err != nil {
		s.t.Fatalf("rescan %s: %v", disk, err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			s.t.Fatalf("host disk %s: %v", disk, err)
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	q := filepath.Join("/sys/block", disk, "queue")
	return diskIdentity{WWID: read(filepath.Join(dev, "wwid")), Vendor: read(filepath.Join(dev, "vendor")),
		Model: read(filepath.Join(dev, "model")), Rev: read(filepath.Join(dev, "rev")),
		Logical: read(filepath.Join(q, "logical_block_size")), Physical: read(filepath.Join(q, "physical_block_size"))}
}

// sameDisk fails the test unless the host sees want through the export.
func (s *scene) sameDisk(when string, want diskIdentity) {
	s.t.Helper()
	got := s.hostSees(s.cfg.ExportIQN)
	s.logf("IDENTITY %s: %s", when, got)
	if got != want {
		s.t.Fatalf("%s the host sees another disk through the proxy:\n got  %s\n want %s (the old LUN's)", when, got, want)
	}
}

// identityVolume registers a volume old -> new moved by the lab's cutover
// hooks; oldSize 0 makes prepare attach the old LUN.
func (s *scene) identityVolume(name string, oldSize int64) {
	s.t.Helper()
	sp := s.spec(name, "old", "new")
	sp.Old.SizeBytes = plan.Bytes(oldSize)
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover")}, PostCutover: []string{s.hook("post-cutover")},
		Timeout: plan.Duration(2 * time.Minute)}
	if r := s.addVolumes(sp); r.code != 0 {
		s.t.Fatalf("volume add: %s", r)
	}
}

// hydrate runs `lunferry run` with the volume unthrottled until it is
// hydrated.
func (s *scene) hydrate(name string) {
	s.t.Helper()
	run := s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", name)
	waitFor(s.t, 3*time.Minute, "hydration to complete", func() bool { return s.status(name).Step == plan.StepHydrated })
	run.stop()
}

// writerClean stops the host's writer and fails on any error it saw.
func (s *scene) writerClean() {
	s.t.Helper()
	s.stopWriter()
	if st := s.writerStats(); st.Errors != 0 || st.Mismatches != 0 {
		s.t.Fatalf("writer: %+v", st)
	}
}

// TestIdentityCarried: an old LUN with a NetApp identity; the host sees
// the same disk (WWID, vendor, model, revision, block sizes) directly on
// the old array, through the proxy after cutover, after `lunferry
// restore` rebuilt an export removed behind lunferry's back, and after
// finalize.
func TestIdentityCarried(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 8 << 20, 12 << 20
	s := newScene(t, oldSize, newSize)
	if err := s.cfg.Arrays["old"].SetIdentity(netappLUN); err != nil {
		t.Fatal(err)
	}
	s.hostOnOld(8, 1<<20)
	direct := s.hostSees(s.cfg.Arrays["old"].IQN)
	s.logf("IDENTITY directly on the old array: %s", direct)
	if want := scsi.LIOWWID(netappLUN.CompanyID, netappLUN.UnitSerial); direct.WWID != want || !strings.HasPrefix(direct.Vendor, "NETAPP") {
		t.Fatalf("the lab's old LUN is not NetApp's: %s (want wwid %s)", direct, want)
	}

	s.identityVolume("idvol", oldSize)
	s.mustLF("migrate", "prepare", "idvol")
	s.cutover("idvol")
	s.sameDisk("after cutover", direct)
	st := s.status("idvol")
	if st.HostWWID != direct.WWID || !st.OldIdentity {
		t.Fatalf("status --json: hostWWID %q oldIdentity %v, want %s, true", st.HostWWID, st.OldIdentity, direct.WWID)
	}
	show := s.mustLF("volume", "show", "idvol").stdout
	if !regexp.MustCompile(`identity:\s+the host sees ` + regexp.QuoteMeta(direct.WWID) + `, the old LUN's`).MatchString(show) {
		t.Fatalf("volume show does not say the host sees the old LUN's %s:\n%s", direct.WWID, show)
	}

	// The export removed behind lunferry's back (the host quiesced and
	// logged out first), rebuilt by `lunferry restore`; the host logs in
	// again and sees a freshly scanned disk.
	s.writerClean()
	s.labCmd("host", "unmount")
	if err := kernel.Ports(kernel.Options{}).Exporter.Teardown(context.Background(), s.cfg.ExportIQN, plan.DMName("idvol")); err != nil {
		t.Fatal(err)
	}
	r := s.mustLF("restore")
	s.logf("restore of the removed export (%.1fs): %s", r.took.Seconds(), strings.TrimSpace(r.stdout))
	s.labCmd("host", "mount", "proxy")
	s.labCmd("writer", "start")
	s.sameDisk("after restore rebuilt the export", direct)

	s.hydrate("idvol")
	s.sameDisk("hydrated", direct)
	s.mustLF("migrate", "finalize", "idvol")
	s.sameDisk("after finalize", direct)
	s.writerClean()
}

// TestIdentityLargerNewBlocksRefused: a new LUN with 4096-byte logical
// blocks for an old LUN with 512-byte ones is refused at prepare.
func TestIdentityLargerNewBlocksRefused(t *testing.T) {
	vmtest.Require(t)
	s := newScene(t, 4<<20, 8<<20)
	if err := s.cfg.Arrays["old"].SetACLs(s.cfg.ProxyIQN); err != nil {
		t.Fatal(err)
	}
	if err := s.cfg.Arrays["old"].SetIdentity(lab.LUNIdentity{UnitSerial: arraySerial(t)}); err != nil {
		t.Fatal(err)
	}
	if err := s.cfg.Arrays["new"].SetIdentity(lab.LUNIdentity{BlockSize: 4096}); err != nil {
		t.Fatal(err)
	}
	s.save()
	s.identityVolume("blk", 0)
	r := s.lunferry("migrate", "prepare", "blk")
	expect(t, r, exitRefused, "4096-byte", "512-byte")
	s.logf("prepare, 512-byte old and 4096-byte new: exit %d: %s", r.code, lastLine(r.stderr))
}

// TestIdentity4KOldOn512New: an old LUN with 4096-byte logical blocks
// migrates to a new LUN with 512-byte ones; the host sees 4096-byte blocks
// (and the rest of the old identity) throughout.
func TestIdentity4KOldOn512New(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 8 << 20, 12 << 20
	s := newScene(t, oldSize, newSize)
	if err := s.cfg.Arrays["old"].SetIdentity(lab.LUNIdentity{UnitSerial: arraySerial(t), BlockSize: 4096}); err != nil {
		t.Fatal(err)
	}
	s.hostOnOld(8, 1<<20)
	direct := s.hostSees(s.cfg.Arrays["old"].IQN)
	s.logf("IDENTITY directly on the old array: %s", direct)
	if direct.Logical != "4096" {
		t.Fatalf("the lab's old LUN has %s-byte logical blocks, want 4096", direct.Logical)
	}
	s.identityVolume("blk4k", oldSize)
	s.mustLF("migrate", "prepare", "blk4k")
	s.cutover("blk4k")
	s.sameDisk("after cutover", direct)
	s.hydrate("blk4k")
	s.sameDisk("hydrated", direct)
	s.mustLF("migrate", "finalize", "blk4k")
	s.sameDisk("after finalize", direct)
	s.writerClean()
}

// TestIdentityReservationRefused: an old LUN on which another initiator
// (the host) registered a persistent reservation key is refused at
// prepare, naming the key.
func TestIdentityReservationRefused(t *testing.T) {
	vmtest.Require(t)
	s := newScene(t, 4<<20, 8<<20)
	if err := s.cfg.Arrays["old"].SetIdentity(lab.LUNIdentity{UnitSerial: arraySerial(t)}); err != nil {
		t.Fatal(err)
	}
	// LIO writes its reservation state under <dbroot>/pr on every
	// registration: the old array needs the directory.
	dbroot, err := os.ReadFile(filepath.Join(lab.DefaultConfigFS, "dbroot"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(strings.TrimSpace(string(dbroot)), "pr"), 0o700); err != nil {
		t.Fatal(err)
	}
	dev := strings.TrimSpace(s.labCmd("host", "login", "old"))
	const key = "0x1e7f00d5"
	for _, args := range [][]string{{"--out", "--register", "--param-sark=" + key, dev}, {"--in", "--read-keys", dev}} {
		out, err := exec.Command("sg_persist", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("sg_persist %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		s.logf("host: sg_persist %s:\n%s", strings.Join(args, " "), out)
	}
	if err := s.cfg.Arrays["old"].SetACLs(s.cfg.Host.IQN, s.cfg.ProxyIQN); err != nil {
		t.Fatal(err)
	}
	s.save()
	s.identityVolume("pr", 0)
	r := s.lunferry("migrate", "prepare", "pr")
	expect(t, r, exitRefused, key, "reservation")
	s.logf("prepare with the host's key registered on the old LUN: exit %d: %s", r.code, lastLine(r.stderr))
}
