package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// Identity power cut scenario: the host side (TestIdentityPowerCut) boots
// the lab twice over the same three virtio disks; the guest side
// (TestIdentityPowerCutGuest) plays one boot, chosen by EnvIdentityCut.
const (
	// EnvIdentityCut selects the guest side's boot: "boot1" or "boot2".
	EnvIdentityCut = "LUNFERRY_E2E_IDENTITY_CUT"
	identityCutNow = "E2E-IDENTITY-POWER-CUT-NOW"
)

// TestIdentityPowerCut: boot 1 gives the old array's storage object a
// NetApp identity, records what the host sees of the old LUN directly,
// cuts over, has the host register a reservation key with APTPL through
// the export and starts a throttled hydration; the power is cut (qemu
// killed) mid-hydration. Boot 2 brings the arrays back (the lab gives the
// old LUN its identity again), `lunferry run` rebuilds the export, and
// the host logs in again: it must see the same wwid, vendor, model,
// revision and logical and physical block size as the old LUN directly,
// its reservation, and again the same disk after hydration and finalize.
func TestIdentityPowerCut(t *testing.T) {
	vmtest.RequireLab(t)
	bin := t.TempDir()
	start := time.Now()
	if err := buildBinaries(bin); err != nil {
		t.Fatal(err)
	}
	runBoots(t, bin, rebootDisks(t), "TestIdentityPowerCutGuest", EnvIdentityCut, 15*time.Minute,
		labBoot{"boot1", identityCutNow}, labBoot{name: "boot2"})
	t.Logf("RESULT identity and APTPL reservation across a power cut mid-hydration: 2 boots, %.0fs", time.Since(start).Seconds())
}

// TestIdentityPowerCutGuest is the guest side of TestIdentityPowerCut; it
// runs only when that test boots the lab.
func TestIdentityPowerCutGuest(t *testing.T) {
	vmtest.Require(t)
	phase := os.Getenv(EnvIdentityCut)
	if phase == "" {
		t.Skip("guest side of TestIdentityPowerCut: runs only when that test boots the lab (make test-vm pass 2)")
	}
	s, sp := powerCutScene(t, phase == "boot1")
	sp.Name = "idcut"
	sp.Throttle = mustSchedule(t, "2MiB/s")
	noFence(&sp)
	// The guest's / is a RAM overlay: LIO's APTPL files go to the state
	// disk, as they stay on a proxy's own disk.
	unbind, err := lab.PersistPRDir(filepath.Join(filepath.Dir(s.cfg.Dir), "target-pr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unbind(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	recorded := filepath.Join(s.cfg.Dir, "identity-direct.json")
	if phase == "boot1" {
		identityCutBoot1(t, s, sp, recorded)
		return
	}
	s.cleanupVolume(sp)
	identityCutBoot2(t, s, sp, recorded)
}

// identityCutBoot1 gives the old LUN NetApp's identity, records what the
// host sees of it directly, cuts over, registers the host's key with
// APTPL through the export and asks for the power cut mid-hydration.
func identityCutBoot1(t *testing.T, s *scene, sp plan.Spec, recorded string) {
	if err := s.cfg.Arrays["old"].SetIdentity(netappLUN); err != nil {
		t.Fatal(err)
	}
	s.save() // Up gives the identity again on boot 2
	s.hostOnOld(32, 4<<20)
	direct := s.hostSees(s.cfg.Arrays["old"].IQN)
	s.logf("IDENTITY directly on the old array: %s", direct)
	if want := scsi.LIOWWID(netappLUN.CompanyID, netappLUN.UnitSerial); direct.WWID != want {
		t.Fatalf("the lab's old LUN is not NetApp's: %s (want wwid %s)", direct, want)
	}
	b, err := json.Marshal(direct)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.WriteDurable(recorded, b); err != nil {
		t.Fatal(err)
	}
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", sp.Name)
	s.cutover(sp.Name)
	s.sameDisk("after cutover", direct)
	s.hostReserves(netappLUN.UnitSerial)
	s.hostStillReserves("before the power cut")
	// LIO writes the APTPL file without fsync: a power cut within the
	// filesystem's commit interval of a registration loses it.
	syscall.Sync()
	s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", sp.Name)
	waitFor(t, 5*time.Minute, "hydration past 10% with host writes through the proxy", func() bool {
		p := s.status(sp.Name).Progress
		return p.TotalRegions > 0 && p.HydratedRegions*10 > p.TotalRegions && s.writerStats().Writes() >= 10
	})
	if st := s.status(sp.Name); st.Step != plan.StepHydrating {
		t.Fatalf("before the power cut: step %s, want %s", st.Step, plan.StepHydrating)
	}
	fmt.Println(identityCutNow)
	os.Stdout.Sync()
	time.Sleep(10 * time.Minute) // the host kills the VM
	t.Fatal("still running 10 minutes after asking for the power cut")
}

// identityCutBoot2: `lunferry run` rebuilds the export after the power
// cut; the host logs in again and sees the old LUN's disk and its
// reservation, then again after hydration and finalize.
func identityCutBoot2(t *testing.T, s *scene, sp plan.Spec, recorded string) {
	b, err := os.ReadFile(recorded)
	if err != nil {
		t.Fatal(err)
	}
	var direct diskIdentity
	if err := json.Unmarshal(b, &direct); err != nil {
		t.Fatal(err)
	}
	s.logf("IDENTITY recorded directly on the old array before the power cut: %s", direct)
	run := s.startLF("run", "--interval", "1s")
	waitFor(t, 2*time.Minute, "lunferry run to rebuild the export", func() bool {
		_, err := os.Stat(filepath.Join(lab.DefaultConfigFS, "iscsi", sp.Export.IQN))
		return err == nil
	})
	s.labCmd("host", "mount", "proxy")
	s.sameDisk("after the power cut and `lunferry run`", direct)
	s.hostStillReserves("after the power cut and `lunferry run`")
	// The rebooted host logs in as another initiator port (open-iscsi's
	// ISID counts its sessions): like a cluster node's software on
	// restart it registers its key again (APTPL set: a registration
	// without it makes LIO drop the file) before writing.
	s.sgPersist("--out", "--register-ignore", "--param-sark="+hostKey, "--param-aptpl")
	s.hostStillReserves("after the host registered its new session")
	s.labCmd("writer", "start")
	n := s.writerStats().Writes()
	waitFor(t, time.Minute, "the host's writer to write through the proxy", func() bool { return s.writerStats().Writes() >= n+5 })
	s.mustLF("migrate", "throttle", sp.Name, "unlimited")
	waitFor(t, 5*time.Minute, "hydration to complete", func() bool { return s.status(sp.Name).Step == plan.StepHydrated })
	s.logf("lunferry run:\n%s", run.stop())
	s.sameDisk("hydrated", direct)
	s.mustLF("migrate", "finalize", sp.Name)
	s.sameDisk("after finalize", direct)
	s.hostStillReserves("after finalize")
	s.writerClean()
}
