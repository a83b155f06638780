package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
)

// hostThin rescans the host's disk behind its session to iqn and returns
// what it knows of its thin provisioning: READ CAPACITY(16)'s LBPME and
// the discard limit Linux gives the disk ("0": no discard).
func (s *scene) hostThin(iqn string) (lbpme bool, discardMax string) {
	s.t.Helper()
	s.hostSees(iqn) // rescans
	disk := s.cfg.Host.SessionDisk(iqn)
	out, err := exec.Command("sg_readcap", "--long", "/dev/"+disk).CombinedOutput()
	if err != nil {
		s.t.Fatalf("sg_readcap %s: %v\n%s", disk, err, out)
	}
	b, err := os.ReadFile(filepath.Join("/sys/block", disk, "queue", "discard_max_bytes"))
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.Contains(string(out), "lbpme=1"), strings.TrimSpace(string(b))
}

// thinThrough fails unless the host sees a thin provisioned LUN through
// the export and its fstrim unmaps blocks through it: a scratch file (not
// the writer's) is written and deleted first, since ext4 trims only the
// block groups that freed blocks since the last trim (mkfs marks them
// all trimmed).
func (s *scene) thinThrough(when string) {
	s.t.Helper()
	lbpme, max := s.hostThin(s.cfg.ExportIQN)
	scratch := filepath.Join(s.cfg.Host.Mount, "trim-scratch")
	if out, err := exec.Command("dd", "if=/dev/zero", "of="+scratch, "bs=64k", "count=32", "conv=fsync").CombinedOutput(); err != nil {
		s.t.Fatalf("dd: %v\n%s", err, out)
	}
	if err := os.Remove(scratch); err != nil {
		s.t.Fatal(err)
	}
	// ext4 hands a deleted file's blocks back only after its journal
	// commit has been processed, and fstrim skips groups with nothing
	// freed since the last trim: a 0 B trim right after the delete is
	// retried (CI once saw 0 B after finalize).
	var out []byte
	var err error
	for try := 1; try <= 3; try++ {
		lab.ExecOut("sync")
		out, err = exec.Command("fstrim", "-v", s.cfg.Host.Mount).CombinedOutput()
		if err != nil || !strings.Contains(string(out), " 0 B ") {
			break
		}
		s.logf("THIN %s: fstrim try %d trimmed nothing yet", when, try)
		time.Sleep(time.Second)
	}
	s.logf("THIN %s: lbpme %v, discard_max_bytes %s; fstrim: %s", when, lbpme, max, strings.TrimSpace(string(out)))
	if !lbpme || max == "0" || err != nil || strings.Contains(string(out), " 0 B ") {
		s.t.Fatalf("%s the host does not unmap through the proxy (lbpme %v, discard_max_bytes %s, fstrim %v: %s)", when, lbpme, max, err, out)
	}
}

// TestThinProvisioningCarried: a thin provisioned old LUN migrated to a
// thin new LUN stays thin to the host (LBPME, UNMAP: Linux gives the disk
// a discard limit) through the clone, hydrated and after finalize (linear
// over the new LUN), and the host's fstrim works at each step without
// losing a file.
func TestThinProvisioningCarried(t *testing.T) {
	vmtest.Require(t)
	const oldSize, newSize = 16 << 20, 24 << 20
	s := newScene(t, oldSize, newSize)
	for role, id := range map[string]lab.LUNIdentity{"old": {UnitSerial: arraySerial(t), Thin: true}, "new": {UnitSerial: arraySerial(t), Thin: true}} {
		if err := s.cfg.Arrays[role].SetIdentity(id); err != nil {
			t.Fatal(err)
		}
	}
	s.save()
	s.hostOnOld(8, 1<<20)
	lbpme, max := s.hostThin(s.cfg.Arrays["old"].IQN)
	s.logf("THIN directly on the old array: lbpme %v, discard_max_bytes %s", lbpme, max)
	if !lbpme || max == "0" {
		t.Fatalf("the lab's old LUN is not thin: lbpme %v, discard_max_bytes %s", lbpme, max)
	}
	s.identityVolume("thin", oldSize)
	s.mustLF("migrate", "prepare", "thin")
	s.cutover("thin")
	s.thinThrough("after cutover")
	s.hydrate("thin")
	s.thinThrough("hydrated")
	s.mustLF("migrate", "finalize", "thin")
	s.thinThrough("after finalize")
	s.writerClean()
}
