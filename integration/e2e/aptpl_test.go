package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// hostKey is the persistent reservation key the host registers through
// the export, with APTPL set, and reserves with.
const hostKey = "0x5eed0001"

// sgPersist runs sg_persist on the host's disk behind its session to the
// export and returns its output.
func (s *scene) sgPersist(args ...string) string {
	s.t.Helper()
	disk := s.cfg.Host.SessionDisk(s.cfg.ExportIQN)
	if disk == "" {
		s.t.Fatalf("the host has no disk behind %s", s.cfg.ExportIQN)
	}
	args = append(args, "/dev/"+disk)
	out, err := exec.Command("sg_persist", args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("host: sg_persist %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// hostReserves registers hostKey through the export with APTPL set and
// takes a Write Exclusive, Registrants Only reservation (type 5: every
// registered path of a cluster may write), as a cluster node would; it
// returns the APTPL file LIO wrote for the export's storage object.
func (s *scene) hostReserves(serial string) string {
	s.t.Helper()
	s.sgPersist("--out", "--register", "--param-sark="+hostKey, "--param-aptpl")
	s.sgPersist("--out", "--reserve", "--param-rk="+hostKey, "--prout-type=5")
	pr, err := lab.PRDir()
	if err != nil {
		s.t.Fatal(err)
	}
	file := filepath.Join(pr, "aptpl_"+serial)
	b, err := os.ReadFile(file)
	if err != nil {
		s.t.Fatalf("LIO kept no APTPL file for the export's unit serial %s: %v", serial, err)
	}
	s.logf("host registered %s with APTPL and reserved; %s:\n%s", hostKey, file, strings.TrimRight(string(b), "\x00\n"))
	return file
}

// noFence takes sp's cutover fence off (lab only): the lab's old array
// runs in the proxy's kernel and shares its dbroot, so with the old LUN's
// unit serial on the export LIO keeps both storage objects' APTPL state in
// the same aptpl_<serial> file, and the fence's PERSISTENT RESERVE OUT on
// the old LUN (APTPL off) rewrites it as "No Registrations or
// Reservations". A real old array keeps its own.
func noFence(sp *plan.Spec) { sp.Fence = "none" }

// hostStillReserves fails the test unless the host, through the export,
// sees its key registered and its reservation held.
func (s *scene) hostStillReserves(when string) {
	s.t.Helper()
	keys := s.sgPersist("--in", "--read-keys")
	res := s.sgPersist("--in", "--read-reservation")
	s.logf("APTPL %s: keys: %s; reservation: %s", when, oneLine(keys), oneLine(res))
	if !strings.Contains(keys, hostKey) || !strings.Contains(res, hostKey) || !strings.Contains(res, "Write Exclusive, registrants only") {
		s.t.Fatalf("%s the host's reservation did not come back:\n%s\n%s", when, keys, res)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestAPTPLRestore: a reservation the host made through the export with
// APTPL set (registration and a Write Exclusive, Registrants Only
// reservation) comes back when `lunferry restore` rebuilds an export
// removed behind lunferry's back under the host, whose session recovers
// (same initiator port) and whose writer goes on writing.
func TestAPTPLRestore(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 32 << 20, 48 << 20
	s := newScene(t, oldSize, newSize)
	serial := arraySerial(t)
	if err := s.cfg.Arrays["old"].SetIdentity(lab.LUNIdentity{UnitSerial: serial}); err != nil {
		t.Fatal(err)
	}
	s.save()
	s.hostOnOld(8, 1<<20)
	sp := s.spec("aptpl", "old", "new")
	sp.Old.SizeBytes = oldSize
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover")}, PostCutover: []string{s.hook("post-cutover")},
		Timeout: plan.Duration(2 * time.Minute)}
	noFence(&sp)
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", "aptpl")
	s.cutover("aptpl")
	// A LIO old LUN's unit serial is one LIO can show: the export keeps it.
	file := s.hostReserves(serial)
	s.hostStillReserves("before the export is removed")

	// The export goes under the host (its session drops and waits to
	// recover, its writer's I/O waits), as after a proxy's reboot.
	if err := kernel.Ports(kernel.Options{}).Exporter.Teardown(context.Background(), s.cfg.ExportIQN, plan.DMName("aptpl")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the APTPL file went with the export: %v", err)
	}
	r := s.mustLF("restore")
	s.logf("restore of the removed export (%.1fs): %s", r.took.Seconds(), strings.TrimSpace(r.stdout))
	s.hostStillReserves("after restore rebuilt the export")
	n := s.writerStats().Writes()
	waitFor(t, 3*time.Minute, "the host's writer to write through the reserved export", func() bool { return s.writerStats().Writes() >= n+5 })
	s.writerClean()
}
