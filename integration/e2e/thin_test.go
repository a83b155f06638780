package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
// the export and its fstrim goes through.
func (s *scene) thinThrough(when string) {
	s.t.Helper()
	lbpme, max := s.hostThin(s.cfg.ExportIQN)
	out, err := exec.Command("fstrim", "-v", s.cfg.Host.Mount).CombinedOutput()
	s.logf("THIN %s: lbpme %v, discard_max_bytes %s; fstrim: %s", when, lbpme, max, strings.TrimSpace(string(out)))
	if !lbpme || max == "0" || err != nil {
		s.t.Fatalf("%s the host does not see a thin LUN through the proxy (lbpme %v, discard_max_bytes %s, fstrim %v)", when, lbpme, max, err)
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
