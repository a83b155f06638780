package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
)

// TestUnreadableOldRange: 24 KiB of the old LUN, inside a file the host
// wrote before cutover, return read errors (a dm "error" segment under
// the old array's backing store) from cutover on. dm-clone hydrates the
// rest and retries that batch forever; `lunferry run` reports the stall
// and names exactly the 24 KiB (status text and --json, `status --check`
// exit 4, run's output), finalize refuses (exit 4) naming them. The host
// reading that file's bad blocks gets EIO; its writer's writes see no
// error. Once the admin fixes the array (the range reads again),
// hydration completes by itself and finalize succeeds; every file the
// host wrote reads back intact.
func TestUnreadableOldRange(t *testing.T) {
	vmtest.Require(t)
	start := time.Now()
	const oldSize, newSize = 32 << 20, 48 << 20
	s := newScene(t, oldSize, newSize)
	br := s.badRangeUnder("old")
	s.hostOnOld(8, 8<<20)
	big := filepath.Join(s.cfg.Host.Mount, "base", "big.dat")
	const fileOff = 1<<20 + 12<<10
	off, err := lab.DiskOffset(big, fileOff)
	if err != nil {
		t.Fatal(err)
	}
	bad := clone.Extent{Offset: uint64(off), Length: 24 << 10}
	sp := s.spec("rerr1", "old", "new")
	sp.Old.SizeBytes = oldSize
	// The runbook's stallAfter (20 s, not the 2 min default) keeps the
	// test short; what is reported is the same.
	sp.StallAfter = plan.Duration(20 * time.Second)
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover")}, PostCutover: []string{s.hook("post-cutover")},
		Timeout: plan.Duration(2 * time.Minute)}
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", sp.Name)
	s.cutover(sp.Name)
	if err := br.Fail(off, int64(bad.Length)); err != nil {
		t.Fatal(err)
	}
	s.logf("old LUN unreadable at %s (byte %d of base/big.dat)", bad, fileOff)

	run := s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", sp.Name)
	started := time.Now()
	var stalledAfter time.Duration
	waitFor(t, 8*time.Minute, "the stall and its unreadable range to be reported", func() bool {
		st := s.status(sp.Name)
		if !st.StalledSince.IsZero() && stalledAfter == 0 {
			stalledAfter = time.Since(started)
		}
		return st.Unreadable != nil && st.Unreadable.Done
	})
	namedAfter := time.Since(started)
	st := s.status(sp.Name)
	s.logf("stall reported %.0fs after start, range named %.0fs after start: %+v", stalledAfter.Seconds(), namedAfter.Seconds(), *st.Unreadable)
	if !slices.Equal(st.Unreadable.Ranges, []clone.Extent{bad}) {
		t.Errorf("status names %v unreadable, want exactly %v", st.Unreadable.Ranges, bad)
	}
	s.stallReported(sp.Name, bad, run)
	hostRead := readDirect(big, fileOff+4096, 4096)
	s.logf("host's O_DIRECT read of base/big.dat in the bad range: %v", hostRead)
	if !errors.Is(hostRead, unix.EIO) {
		t.Errorf("the host read an unhydrated unreadable block: %v, want EIO", hostRead)
	}

	if err := br.Heal(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	waitFor(t, 3*time.Minute, "hydration to complete once the old LUN reads again", func() bool { return s.status(sp.Name).Step == plan.StepHydrated })
	hydrated := time.Since(healed)
	s.logf("hydrated %.1fs after the old array was fixed", hydrated.Seconds())
	s.logf("lunferry run:\n%s", run.stop())
	s.mustLF("migrate", "finalize", sp.Name)
	w := s.stopWriter()
	s.writerSawOnlyBadReads(w)
	out := s.labCmd("verify")
	t.Logf("RESULT unreadable old range (%s): stall reported %.0fs after start, range named %.0fs after start; host: read in the range EIO, writer %d files 0 write errors, %d read-back errors (base/big.dat only); hydrated %.1fs after the fix; %s; test %.0fs",
		bad, stalledAfter.Seconds(), namedAfter.Seconds(), w.Files, w.Errors, hydrated.Seconds(), lastLine(out), time.Since(start).Seconds())
}

// badRangeUnder rebuilds the array of role over a lab.BadRange on its
// backing file (healthy until Fail), removed after the array at cleanup.
func (s *scene) badRangeUnder(role string) *lab.BadRange {
	s.t.Helper()
	a := s.cfg.Arrays[role]
	if err := a.Down(); err != nil {
		s.t.Fatal(err)
	}
	br, err := lab.NewBadRange("labbad-"+s.suffix, a.Backing)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if err := errors.Join(a.Down(), br.Remove()); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
	})
	a.Backing = br.Device()
	s.save()
	if err := a.Up(); err != nil {
		s.t.Fatal(err)
	}
	return br
}

// stallReported checks every place a stall with the unreadable extent bad
// must show: status text, `status --check` (exit 4), finalize's refusal
// (exit 4) and run's output.
func (s *scene) stallReported(name string, bad clone.Extent, run *background) {
	s.t.Helper()
	r := s.lunferry("migrate", "status", name)
	if !strings.Contains(r.stdout, "hydration stalled since") || !strings.Contains(r.stdout, bad.String()) {
		s.t.Errorf("migrate status does not name the stall and %s:\n%s", bad, r)
	}
	r = s.lunferry("migrate", "status", "--check", name)
	if r.code != 4 || !strings.Contains(r.stderr+r.stdout, bad.String()) {
		s.t.Errorf("migrate status --check: want exit 4 naming %s:\n%s", bad, r)
	}
	r = s.lunferry("migrate", "finalize", name)
	s.logf("finalize while stalled: %s", r)
	if r.code != 4 || !strings.Contains(r.stderr, "hydration stalled") || !strings.Contains(r.stderr, bad.String()) {
		s.t.Errorf("finalize while stalled: want exit 4 naming the stall and %s:\n%s", bad, r)
	}
	if out := run.out.String(); !strings.Contains(out, bad.String()) {
		s.t.Errorf("lunferry run's output does not name %s:\n%s", bad, out)
	}
}

// writerSawOnlyBadReads fails the test unless every error the host's
// writer logged is a read-back of base/big.dat (the file holding the
// unreadable range): its writes must all succeed.
func (s *scene) writerSawOnlyBadReads(w lab.WriterStats) {
	s.t.Helper()
	if w.Writes() == 0 || w.Mismatches != 0 {
		s.t.Errorf("writer: %+v", w)
	}
	logs, _ := filepath.Glob(filepath.Join(s.dir, "writer-*.log"))
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "writer: ") && !strings.HasPrefix(l, "writer: read back base/big.dat: ") {
				s.t.Errorf("%s: the host's writer saw an error outside the unreadable file: %s", filepath.Base(p), l)
			}
		}
	}
}

// readDirect reads n bytes at off of path with O_DIRECT (past the page
// cache, as the proxy serves them now) and returns the error.
func readDirect(path string, off, n int64) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	if _, err := unix.Pread(fd, buf, off); err != nil {
		return fmt.Errorf("pread %s at %d: %w", path, off, err)
	}
	return nil
}
