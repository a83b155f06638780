package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// writeScattered writes random data into about a tenth of the regions
// (region bytes each) of the sparse file path of size bytes, chosen at
// random: 32-64 KiB in each, at a 4 KiB-aligned offset inside it (the file
// system's block: what SEEK_HOLE sees). It returns the regions touched and
// the bytes written.
func writeScattered(t testing.TB, path string, size, region int64) (map[int64]bool, int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := mrand.New(mrand.NewPCG(13, uint64(time.Now().UnixNano())))
	touched, written := map[int64]bool{}, int64(0)
	for _, k := range r.Perm(int(size / region))[:size/region/10] {
		pages := region / 4096
		n := (pages/2 + r.Int64N(pages/2+1)) * 4096
		off := int64(k)*region + r.Int64N((region-n)/4096+1)*4096
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32()) | 1 // never a zero block
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		touched[int64(k)] = true
		written += n
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return touched, written
}

func fileSum(t testing.TB, path string, size int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, size)); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// TestThinOldLUNNotCopied: a 64 MiB thin old LUN on stgt (sparse file,
// GET LBA STATUS from its holes) with about 10 % written at scattered
// offsets, migrated offline onto a thin LIO LUN over a sparse file: the
// cutover marks every region the old LUN reports unmapped hydrated without
// a copy, hydration copies only the regions holding data, the new LUN's
// file allocates only those, and verify and the files' checksums find
// every byte equal.
func TestThinOldLUNNotCopied(t *testing.T) { thinOld(t, thinCase{}) }

// TestThickOldLUNCopiedInFull: the same LUN with thin provisioning off on
// stgt (no LBPME, no GET LBA STATUS) is copied in full, as before: every
// region hydrated by a copy, the new LUN allocated in full.
func TestThickOldLUNCopiedInFull(t *testing.T) { thinOld(t, thinCase{thick: true}) }

// TestThinCrashAfterDiscard: lunferry killed after the discards, before
// it recorded them done: the cutover's rerun discards the same regions
// again (before the export exists) and the copy is as good.
func TestThinCrashAfterDiscard(t *testing.T) { thinOld(t, thinCase{crash: "thin:discarded"}) }

// thinCase varies thinOld: a fully provisioned old LUN, a crash point
// inside the first cutover.
type thinCase struct {
	thick bool
	crash string
}

func thinOld(t *testing.T, c thinCase) {
	thick := c.thick
	vmtest.Require(t)
	const size, region = 64 << 20, 64 << 10
	s := newScene(t, 16<<20, size)
	if err := s.cfg.Arrays["new"].SetIdentity(lab.LUNIdentity{UnitSerial: arraySerial(t), Thin: true, ZeroesUnmapped: true}); err != nil {
		t.Fatal(err)
	}
	s.save()
	old := &lab.TgtArray{IQN: "iqn.2026-12.io.lunferry.lab:tgt-old-" + s.suffix, Portal: "127.0.0.5:3261",
		Backing: filepath.Join(s.dir, "tgt-old.img"), SizeBytes: size, ControlPort: 1000 + mrand.IntN(30000), Log: filepath.Join(s.dir, "tgtd.log"), Thick: thick}
	touched, written := writeScattered(t, old.Backing, size, region)
	t.Cleanup(func() {
		if err := old.Down(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(old.Log)
			t.Logf("--- tgtd.log\n%s", b)
		}
	})
	if err := old.Up(); err != nil {
		t.Fatal(err)
	}
	oldSum := fileSum(t, old.Backing, size)
	alloc, err := lab.AllocatedBytes(old.Backing)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(size / region)
	s.logf("THINOLD old LUN on tgt: %d bytes written in %d of %d regions, file allocates %d bytes", written, len(touched), total, alloc)

	sp := s.spec("thinold", "old", "new")
	sp.Old = plan.LUN{Portal: old.Portal, IQN: old.IQN, LUN: lab.TgtDiskLUN, SizeBytes: size}
	sp.RegionSectors = region / 512
	// stgt's NAA 6 designator has company id 0, which LIO cannot show
	// (it takes 0 for its own): the export shows a new identity.
	sp.Identity = "new"
	sp.Hooks = plan.Hooks{PostCutover: []string{s.hook("host-login")}, Timeout: plan.Duration(2 * time.Minute)}
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.cleanupVolume(sp)
	s.mustLF("migrate", "prepare", "thinold")
	if c.crash != "" {
		cr := s.lunferryCrash(c.crash, "", "migrate", "cutover", "thinold")
		if !cr.killed {
			t.Fatalf("cutover did not die at %s: %s", c.crash, cr.result)
		}
		v := s.showVolume("thinold")
		if v.Step != plan.StepCuttingOver || v.Thin == nil || v.Thin.Done || v.Exported {
			t.Fatalf("after the kill at %s: step %s, thin %+v, exported %v", c.crash, v.Step, v.Thin, v.Exported)
		}
		s.logf("THINOLD killed at %s after %.1fs; status: %s", c.crash, cr.took.Seconds(), strings.TrimSpace(s.mustLF("migrate", "status", "thinold").stdout))
	}
	r := s.mustLF("migrate", "cutover", "thinold")
	s.logf("THINOLD cutover (%.1fs): %s", r.took.Seconds(), strings.TrimSpace(r.stdout+r.stderr))

	v := s.showVolume("thinold")
	want := uint64(total) - uint64(len(touched))
	if thick {
		want = 0
		if v.Thin != nil {
			t.Fatalf("thin record %+v for a fully provisioned old LUN", v.Thin)
		}
	} else if v.Thin == nil || !v.Thin.Done || v.Thin.Note != "" || v.Thin.Regions != want {
		t.Fatalf("thin record %+v: want %d regions skipped (%d of %d hold data)", v.Thin, want, len(touched), total)
	}
	st := s.status("thinold")
	if st.Progress.HydratedRegions != want {
		t.Fatalf("the clone reports %d regions hydrated after cutover, want the %d skipped", st.Progress.HydratedRegions, want)
	}
	text := s.mustLF("migrate", "status", "thinold").stdout
	if !thick && !strings.Contains(text, "thin old LUN: "+fmt.Sprint(want)+" regions") {
		t.Fatalf("status does not say what was skipped:\n%s", text)
	}

	// Timed from `migrate start` (lunferry run already going) to the round
	// that found the clone hydrated (HydratedAt; 1 s rounds).
	run := s.startLF("run", "--interval", "1s")
	t0 := time.Now()
	s.mustLF("migrate", "start", "thinold")
	waitFor(s.t, 3*time.Minute, "hydration to complete", func() bool { return s.status("thinold").Step == plan.StepHydrated })
	run.stop()
	took := s.showVolume("thinold").HydratedAt.Sub(t0)
	newAlloc, err := lab.AllocatedBytes(s.cfg.Arrays["new"].Backing)
	if err != nil {
		t.Fatal(err)
	}
	copied := int64(total) - int64(want)
	s.logf("THINOLD thick=%v hydrated in %.1fs (copied %d regions, %d bytes); the new LUN's file allocates %d bytes (%.1f %%)",
		thick, took.Seconds(), copied, copied*region, newAlloc, 100*float64(newAlloc)/size)
	if newAlloc > copied*region+1<<20 || newAlloc < written {
		t.Fatalf("the new LUN allocates %d bytes: want about the %d regions copied (%d bytes; %d written)", newAlloc, copied, copied*region, written)
	}

	vr := s.mustLF("migrate", "verify", "thinold")
	s.logf("THINOLD verify: %s", strings.TrimSpace(vr.stdout))
	if !thick && !strings.Contains(vr.stdout, "unmapped on the old LUN, skipped at cutover") {
		t.Fatalf("verify does not report the skipped regions:\n%s", vr.stdout)
	}
	s.mustLF("migrate", "finalize", "thinold")
	if got := fileSum(t, s.cfg.Arrays["new"].Backing, size); !bytes.Equal(got[:], oldSum[:]) {
		t.Fatalf("the new LUN's file differs from the old LUN's: %x vs %x", got, oldSum)
	}
	if now := fileSum(t, old.Backing, size); now != oldSum {
		t.Fatalf("the old LUN changed: %x, was %x", now, oldSum)
	}
	out, err := old.Show()
	if err != nil {
		t.Fatal(err)
	}
	s.logf("THINOLD tgt after finalize:\n%s", out)
}
