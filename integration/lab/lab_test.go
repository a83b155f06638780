package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestManifestLastLineWinsAndTornLineIgnored(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.txt")
	a := strings.Repeat("a", 64)
	b := strings.Repeat("b", 64)
	data := a + " 10 0 base/x\n" + a + " 20 1 w1/y\n" + b + " 11 2 base/x\n" + b[:30]
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{Sum: b, Size: 11, Session: 2, Path: "base/x"}, {Sum: a, Size: 20, Session: 1, Path: "w1/y"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("ReadManifest = %+v, want %+v", got, want)
	}
}

func TestPopulateVerifyFindsDamage(t *testing.T) {
	dir, m := t.TempDir(), filepath.Join(t.TempDir(), "manifest.txt")
	n, bytes, err := Populate(dir, m, 10, 1<<20, 42)
	if err != nil {
		t.Fatal(err)
	}
	if n != 11 || bytes < 1<<20 {
		t.Fatalf("Populate: %d files %d bytes", n, bytes)
	}
	res, err := Verify(dir, m, -1)
	if err != nil || res.Files != 11 || res.Bytes != bytes {
		t.Fatalf("Verify clean: %+v %v", res, err)
	}
	// Flip one byte in the big file, delete a small one.
	f, err := os.OpenFile(filepath.Join(dir, "base/big.dat"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	one := []byte{0}
	f.ReadAt(one, 4097)
	one[0] ^= 1
	f.WriteAt(one, 4097)
	f.Close()
	if err := os.Remove(filepath.Join(dir, "base/d03/f0003.dat")); err != nil {
		t.Fatal(err)
	}
	res, err = Verify(dir, m, -1)
	if err == nil || len(res.Bad) != 2 || res.Files != 9 {
		t.Fatalf("Verify damaged: %+v %v", res, err)
	}
	if !strings.Contains(strings.Join(res.Bad, "\n"), "base/d03/f0003.dat: missing") {
		t.Fatalf("missing file not reported: %v", res.Bad)
	}
}

func TestWriterWritesReadsBackAndRecords(t *testing.T) {
	dir, labDir := t.TempDir(), t.TempDir()
	m := filepath.Join(labDir, "manifest.txt")
	if _, _, err := Populate(dir, m, 4, 0, 7); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	w := &Writer{Dir: dir, Manifest: m, Stats: filepath.Join(labDir, "writer-1.json"), Session: 1, Seed: 7,
		Interval: 5 * time.Millisecond, MaxUsed: 1.01}
	st, err := w.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files < 3 || st.Errors != 0 || st.Mismatches != 0 || st.Stopped.IsZero() || st.Readbacks < st.Files {
		t.Fatalf("writer stats: %+v", st)
	}
	saved, err := LoadStats(w.Stats)
	if err != nil || saved.Files != st.Files {
		t.Fatalf("saved stats %+v, %v", saved, err)
	}
	res, err := Verify(dir, m, -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sessions[0] != 4 || int64(res.Sessions[1]) != st.Files {
		t.Fatalf("verify sessions %v, writer wrote %d", res.Sessions, st.Files)
	}
	if res, err := Verify(dir, m, 0); err != nil || res.Files != 4 {
		t.Fatalf("verify session 0 only: %+v %v", res, err)
	}
}

// A full filesystem must not stop the writer's writes: a test waiting for
// the host to write would wait forever (CI: the writer stopped creating
// files late in a long test and the wait after handover timed out).
func TestWriterRewritesWhenFull(t *testing.T) {
	dir, labDir := t.TempDir(), t.TempDir()
	m := filepath.Join(labDir, "manifest.txt")
	if _, _, err := Populate(dir, m, 4, 0, 7); err != nil {
		t.Fatal(err)
	}
	run := func(session int, maxUsed float64) WriterStats {
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		w := &Writer{Dir: dir, Manifest: m, Stats: filepath.Join(labDir, fmt.Sprintf("writer-%d.json", session)), Session: session, Seed: 7,
			Interval: 5 * time.Millisecond, MaxUsed: maxUsed}
		st, err := w.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := run(1, 1.01)
	full := run(2, 1e-9)
	if full.Files != 0 || full.Rewrites < 3 || full.Writes() != full.Rewrites || full.Errors != 0 || full.Mismatches != 0 {
		t.Fatalf("writer on a full filesystem: %+v", full)
	}
	res, err := Verify(dir, m, -1)
	if err != nil {
		t.Fatal(err)
	}
	if int64(res.Files) != 4+first.Files {
		t.Fatalf("verify after rewrites: %d files, want %d", res.Files, 4+first.Files)
	}
}

func TestWriterCountsReadBackMismatch(t *testing.T) {
	dir, labDir := t.TempDir(), t.TempDir()
	m := filepath.Join(labDir, "manifest.txt")
	if _, _, err := Populate(dir, m, 1, 0, 3); err != nil {
		t.Fatal(err)
	}
	// Corrupt the populated file: the writer's periodic re-reads must
	// see it.
	p := filepath.Join(dir, "base/d00/f0000.dat")
	if err := os.WriteFile(p, []byte("not what was written"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	w := &Writer{Dir: dir, Manifest: m, Stats: filepath.Join(labDir, "s.json"), Session: 1, Seed: 3,
		Interval: time.Millisecond, ReadOnly: true} // re-reads only
	st, err := w.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 0 || st.Mismatches == 0 {
		t.Fatalf("writer on a full fs with a damaged file: %+v", st)
	}
}

func TestConfigRoundTripAndLookups(t *testing.T) {
	dir := t.TempDir()
	c := DefaultConfig(dir, "/dev/vda", 0, filepath.Join(dir, "new.img"), 96<<20)
	p := filepath.Join(dir, "lab.json")
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := got.Array(OldIQN); err != nil || a.Name != "old" || a.Backing != "/dev/vda" {
		t.Fatalf("Array(OldIQN) = %+v, %v", a, err)
	}
	if _, err := got.Array("nope"); err == nil {
		t.Fatal("Array(nope): no error")
	}
	if got.ResolveIQN("host") != HostIQN || got.ResolveIQN("proxy") != got.ProxyIQN || got.ResolveIQN("iqn.x") != "iqn.x" {
		t.Fatal("ResolveIQN")
	}
	t.Setenv("LUNFERRY_EXPORT_IQN", "iqn.2026-11.io.example:e")
	t.Setenv("LUNFERRY_EXPORT_PORTAL", "127.0.0.9:3260")
	if p, i, _ := got.Target("proxy"); p != "127.0.0.9:3260" || i != "iqn.2026-11.io.example:e" {
		t.Fatalf("Target(proxy) from the hook env = %s %s", p, i)
	}
	if p, i, _ := got.Target("new"); p != NewPortal || i != NewIQN {
		t.Fatalf("Target(new) = %s %s", p, i)
	}
}

func TestConfigSessionsAndStats(t *testing.T) {
	c := &Config{Dir: t.TempDir()}
	for i, st := range []WriterStats{{Session: 1, Files: 3, Errors: 0}, {Session: 2, Files: 5, Errors: 1, LastError: "boom"}} {
		if err := SaveStats(c.StatsFile(i+1), st); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Sessions(); len(s) != 2 || s[1] != 2 {
		t.Fatalf("Sessions = %v", s)
	}
	sum, err := c.AllStats()
	if err != nil || sum.Files != 8 || sum.Errors != 1 || sum.Session != 2 || !strings.Contains(sum.LastError, "boom") {
		t.Fatalf("AllStats = %+v, %v", sum, err)
	}
	if _, ran, err := c.StopWriter(); ran || err != nil {
		t.Fatalf("StopWriter with none running: %v %v", ran, err)
	}
}

// A pid file left by a writer of an earlier boot (the power-cut tests
// reboot with the lab's directory kept) names a pid that another process
// may hold now: the writer must count as stopped, and StopWriter must not
// signal that process.
func TestWriterPidFromAnotherBootOrProcessIsStale(t *testing.T) {
	c := &Config{Dir: t.TempDir()}
	self := os.Getpid()
	if err := c.recordWriter(self); err != nil {
		t.Fatal(err)
	}
	if got := c.writerPid(); got != self {
		t.Fatalf("writerPid of a running recorded process = %d, want %d", got, self)
	}
	start, _ := startTime(self)
	for name, content := range map[string]string{
		"old format":      fmt.Sprintf("%d\n", self),
		"another boot":    fmt.Sprintf("%d 00000000-0000-0000-0000-000000000000 %s\n", self, start),
		"another process": fmt.Sprintf("%d %s 1\n", self, bootID()),
		"garbage":         "x y z\n",
	} {
		if err := os.WriteFile(c.pidFile(), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := c.writerPid(); got != 0 {
			t.Errorf("%s: writerPid = %d, want 0 (stale)", name, got)
		}
		if _, ran, err := c.StopWriter(); ran || err != nil {
			t.Errorf("%s: StopWriter = %v, %v; want nothing stopped", name, ran, err)
		}
	}
}
