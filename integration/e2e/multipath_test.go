package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// multipathHost starts the host's dm-multipath (udevd, multipathd) for the
// scene and registers its teardown, which runs before the scene's host
// logout: the writer stopped, the filesystem unmounted, multipathd shut
// down and the maps flushed, then the sessions may go.
func (s *scene) multipathHost() *lab.Multipath {
	s.t.Helper()
	mp := s.cfg.Multipath()
	s.t.Cleanup(s.hostLetGo)
	r := s.run(context.Background(), s.labBin, "-config", s.cfgPath, "mpath", "start")
	if r.code != 0 {
		s.t.Fatalf("mpath start: %s", r)
	}
	return mp
}

// hostLetGo is the multipath host's teardown (idempotent): writer
// stopped, filesystem unmounted, multipathd shut down and the maps
// flushed, sessions logged out. It must run before anything under the
// host's paths goes: a map without paths queues I/O forever.
func (s *scene) hostLetGo() {
	mp := s.cfg.Multipath()
	if _, _, err := s.cfg.StopWriter(); err != nil {
		s.t.Errorf("cleanup: %v", err)
	}
	if err := s.cfg.Host.Unmount(); err != nil {
		s.t.Errorf("cleanup: %v", err)
	}
	if s.t.Failed() {
		s.t.Logf("--- multipath -ll\n%s", mp.Show())
	}
	if err := mp.Stop(); err != nil {
		s.t.Errorf("cleanup: %v", err)
	}
	if err := s.cfg.HostLogoutAll(); err != nil {
		s.t.Errorf("cleanup: %v", err)
	}
}

// hostOnMultipath plays a multipath host before the migration: the old
// array gets a unit serial (a WWID for multipath to key on) and, when
// writeBack, a volatile write cache (WCE=1, FUA taken: what the proxy's
// export shows); it admits the host and the proxy. The host logs in, its
// multipathd builds a map over the one direct path, the host makes ext4
// on the map, mounts it, writes the initial files and starts its writer.
func (s *scene) hostOnMultipath(files int, big int64, writeBack bool) lab.Map {
	s.t.Helper()
	old := s.cfg.Arrays["old"]
	if err := old.SetIdentity(lab.LUNIdentity{UnitSerial: arraySerial(s.t), WriteCache: writeBack}); err != nil {
		s.t.Fatal(err)
	}
	if err := old.SetACLs(s.cfg.Host.IQN, s.cfg.ProxyIQN); err != nil {
		s.t.Fatal(err)
	}
	s.save()
	s.multipathHost()
	s.labCmd("mpath", "mkfs", "old")
	s.labCmd("mpath", "mount", "old")
	out := s.labCmd("populate", "-files", fmt.Sprint(files), "-big", fmt.Sprint(big))
	s.labCmd("mark", "direct")
	s.labCmd("writer", "start")
	m, err := s.cfg.HostMap()
	if err != nil {
		s.t.Fatal(err)
	}
	s.logf("host on its multipath map %s (%s over %v; %s): %s", m.Name, m.Dev, m.Paths, cacheFlags("/dev/"+m.Paths[0]), strings.TrimSpace(out))
	return m
}

// passThrough is what the online cutover's first phase builds by hand:
// the proxy's session to the old LUN, linear over its disk, and the LIO
// export of that device with the old LUN's identity.
type passThrough struct {
	name, dev, disk string
}

// buildPassThrough builds the pass-through with lunferry's kernel
// adapters and registers its teardown (after the host has let go).
func (s *scene) buildPassThrough(name string) passThrough {
	s.t.Helper()
	ctx := context.Background()
	ports := kernel.Ports(kernel.Options{})
	old := s.cfg.Arrays["old"]
	tgt := plan.Target{Portal: old.Portals[0], IQN: old.IQN}
	pt := passThrough{name: plan.DMName(name)}
	s.t.Cleanup(func() {
		s.hostLetGo()
		if err := ports.Exporter.Teardown(ctx, s.cfg.ExportIQN, pt.name); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
		if err := ports.Mapper.Remove(ctx, pt.name); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
		if err := ports.Initiator.Logout(ctx, tgt); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
	})
	if err := ports.Initiator.Login(ctx, tgt); err != nil {
		s.t.Fatal(err)
	}
	disk, err := ports.Initiator.FindDisk(ctx, tgt, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	id, err := ports.Initiator.Identity(ctx, disk.Path)
	if err != nil {
		s.t.Fatal(err)
	}
	exp, verdict := scsi.ForLIO(id, name)
	if !verdict.Exact {
		s.t.Fatalf("the export cannot show the old LUN's WWID %s: %s", verdict.OldWWID, verdict.Reason)
	}
	pt.disk = filepath.Base(disk.Path)
	if pt.dev, err = ports.Mapper.CreateLinear(ctx, pt.name, disk.SizeBytes/512, disk.Path); err != nil {
		s.t.Fatal(err)
	}
	err = ports.Exporter.Apply(ctx, plan.ExportSpec{IQN: s.cfg.ExportIQN, Portals: []string{s.cfg.ExportPortal},
		StorageName: pt.name, Device: pt.dev, HostIQN: s.cfg.Host.IQN, WWN: exp.WWN, BlockSize: exp.BlockSize})
	if err != nil {
		s.t.Fatal(err)
	}
	s.logf("pass-through: proxy's disk %s (%s), linear %s, exported as %s with wwid %s", pt.disk, id.WWID(), pt.dev, s.cfg.ExportIQN, verdict.NewWWID)
	return pt
}

// proxyDiskUnclaimed fails unless the proxy's own disk of the old LUN is
// in no multipath map, for the kernel and for multipathd (which lists it
// as an orphan it does not check): the lab's isolation.
func (s *scene) proxyDiskUnclaimed(mp *lab.Multipath, disk string) {
	s.t.Helper()
	if m, ok, err := lab.MapOf("/sys", disk); err != nil || ok {
		s.t.Fatalf("the proxy's disk %s is in the host's map %s (err %v)", disk, m.Name, err)
	}
	if p, known, err := mp.Path(disk); err != nil || (known && p.Map != "[orphan]") {
		s.t.Fatalf("the host's multipathd claims the proxy's disk %s: %+v (err %v)", disk, p, err)
	}
}

// sameCache fails unless the host's two paths report the same write
// cache and FUA support. A request-based multipath map takes the union:
// with one path write-through without FUA, FUA writes sent down it are
// refused ("Invalid field in CDB") and ext4 aborts its journal.
func (s *scene) sameCache(direct, proxied string) {
	s.t.Helper()
	d, p := cacheFlags("/dev/"+direct), cacheFlags("/dev/"+proxied)
	_, dFlags, _ := strings.Cut(d, ": ")
	_, pFlags, _ := strings.Cut(p, ": ")
	if dFlags != pFlags {
		s.t.Errorf("the host's paths differ in write cache or FUA: direct %s, proxied %s", d, p)
	}
}

// writerProgress waits until the writer has made more files durable than
// it had when called (it writes through the host's current paths).
func (s *scene) writerProgress(what string) {
	s.t.Helper()
	n := s.writerStats().Writes()
	waitFor(s.t, 2*time.Minute, "the writer to write "+what, func() bool { return s.writerStats().Writes() > n+5 })
}

// logStalls logs the writer's longest write per marked phase and returns
// them.
func (s *scene) logStalls() []lab.PhaseStall {
	s.t.Helper()
	st, err := s.cfg.PhaseStalls()
	if err != nil {
		s.t.Fatal(err)
	}
	s.logf("STALLS longest write+fsync per phase:\n%s", lab.FormatStalls(st))
	return st
}

// TestMultipathPassThrough needs no lunferry command: it checks the lab
// and the kernel mechanism the online cutover stands on. The host writes
// (fsync per file) to ext4 on its multipath map over one direct path to
// the old array; a hand-built pass-through (the proxy's session to the
// old LUN, linear over it, LIO export with the old LUN's identity) joins
// the map as a second path, the proxy's own disk of the same WWID staying
// out of it; the direct path is deleted and logged out under the writer,
// and the old array unmaps the host. 0 write errors, every file intact,
// the longest write per phase printed.
func TestMultipathPassThrough(t *testing.T) {
	vmtest.Require(t)
	const size = 32 << 20
	s := newScene(t, size, size)
	direct := s.hostOnMultipath(16, 1<<20, true)
	mp := s.cfg.Multipath()
	s.writerProgress("on the direct path")

	s.labCmd("mark", "passthrough")
	pt := s.buildPassThrough("mpt")
	s.labCmd("mark", "add-paths")
	s.labCmd("mpath", "add", "proxy")
	hostProxied := s.cfg.Host.SessionDisk(s.cfg.ExportIQN)
	both, err := s.cfg.HostMap()
	if err != nil {
		t.Fatal(err)
	}
	if both.Name != direct.Name || !slices.Contains(both.Paths, hostProxied) || len(both.Paths) != 2 {
		t.Fatalf("after add-paths: map %s over %v, want %s over its direct path and %s\n%s", both.Name, both.Paths, direct.Name, hostProxied, mp.Show())
	}
	s.proxyDiskUnclaimed(mp, pt.disk)
	s.sameCache(direct.Paths[0], hostProxied)
	s.logf("map %s over %v (direct %v, proxied %s); the proxy's own %s unclaimed\n%s", both.Name, both.Paths, direct.Paths, hostProxied, pt.disk, mp.Show())
	s.writerProgress("over both paths")

	s.labCmd("mark", "remove-direct-paths")
	s.labCmd("mpath", "remove", "old")
	s.labCmd("acl-del", "old", "host")
	s.writerProgress("over the proxied path alone")
	after, err := s.cfg.HostMap()
	if err != nil {
		t.Fatal(err)
	}
	if after.Name != direct.Name || !slices.Equal(after.Paths, []string{hostProxied}) {
		t.Fatalf("after remove-direct-paths: map %s over %v, want %s over %s alone", after.Name, after.Paths, direct.Name, hostProxied)
	}
	if hs := s.cfg.Host.Sessions(); !slices.Equal(hs, []string{s.cfg.ExportIQN}) {
		t.Fatalf("host sessions after remove-direct-paths: %v, want only the export", hs)
	}
	s.proxyDiskUnclaimed(mp, pt.disk)

	s.labCmd("mark", "stopped")
	st := s.stopWriter()
	stalls := s.logStalls()
	all := s.writerStats()
	s.logf("writer: %d files, %d errors, %d mismatches, longest write %.1f ms", all.Files, all.Errors, all.Mismatches, all.MaxWriteMs)
	if all.Errors != 0 || all.Mismatches != 0 {
		t.Fatalf("writer saw errors: %+v", st)
	}
	for _, p := range stalls[:len(stalls)-1] {
		if p.Writes == 0 {
			t.Fatalf("no write ended in phase %s: the writer did not run through it", p.Phase)
		}
	}
	out := s.labCmd("verify")
	s.logf("files through the proxied path: %s", strings.TrimSpace(out))
}
