package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/plan"
)

// unitCycle is one stop and start of targetcli-fb's unit as measured.
type unitCycle struct {
	what string
	// skipped is what targetctl restore reported it could not restore.
	skipped []string
	// served is the time from the restore's end to the host's next
	// durable write through the proxy.
	served time.Duration
	// rebuilt is the time from the restore's end to lunferry's export
	// serving the host over lunferry's own device.
	rebuilt time.Duration
	// down is the time from the clear's start to the restore's end (the
	// host's session must outlast it and the rest: its replacement
	// timeout, 120 s in the lab).
	down time.Duration
}

func (u unitCycle) String() string {
	host := "host logged out"
	if u.served != 0 {
		host = fmt.Sprintf("host writing %.1fs after it", u.served.Seconds())
	}
	return fmt.Sprintf("%s: clear and restore %.1fs, export over lunferry's device %.1fs after the restore, %s; targetctl skipped %d", u.what, u.down.Seconds(), u.rebuilt.Seconds(), host, len(u.skipped))
}

// TestTargetcliCoexists: mid-hydration (throttled, the host's writer
// writing through the proxy), an admin's targetcli saves the whole LIO
// configuration, lunferry's export and an unrelated target of the
// admin's included; then targetcli-fb's unit stops (`targetctl clear`:
// every LIO object gone, the host's I/O waits) and starts (`targetctl
// restore`) four times, `lunferry run` stopped before the clear and
// started after the restore, as systemd orders them at boot: with that
// file (lunferry's export comes back from it and is kept); with a file
// saved before lunferry's export existed (run rebuilds it); with the
// file's storage object on a /dev/dm-N that no longer exists (targetctl
// skips it; run completes the export); and on a /dev/dm-N that is
// another device now (restored onto it; run tears it down and exports its
// own device). Each time the export serves lunferry's own device again and
// the admin's target is there; the host writes again after the first two.
// For the last two the host is logged out: until run starts, the restored
// target shows it LIO's write-protected virtual LUN 0 or the other
// device (README, "Coexisting with targetcli"). Then hydration completes:
// status clean, writer 0 errors, every file verified. The lab's arrays
// live in the proxy's kernel, so the unit's clear takes them too and the
// restore brings them back (a real array is not on the proxy): its
// reservations with them, hence no fence.
func TestTargetcliCoexists(t *testing.T) {
	vmtest.Require(t)
	start := time.Now()
	const oldSize, newSize = 32 << 20, 48 << 20
	s := newScene(t, oldSize, newSize)
	for _, a := range s.cfg.Arrays {
		// rtslib gives a storage object saved without a unit serial a
		// new one when it restores it: a real array keeps its LUNs'
		// identity (and is not restored by the proxy's unit).
		if err := a.SetIdentity(lab.LUNIdentity{UnitSerial: arraySerial(t)}); err != nil {
			t.Fatal(err)
		}
	}
	s.save()
	admin := s.adminTarget()
	s.hostOnOld(8, 1<<20)
	sp := s.spec("tcli", "old", "new")
	sp.Old.SizeBytes = oldSize
	sp.Throttle = mustSchedule(t, "256KiB/s")
	sp.Hooks = plan.Hooks{PreCutover: []string{s.hook("pre-cutover")}, PostCutover: []string{s.hook("post-cutover")},
		Timeout: plan.Duration(2 * time.Minute)}
	noFence(&sp)
	if r := s.addVolumes(sp); r.code != 0 {
		t.Fatalf("volume add: %s", r)
	}
	s.mustLF("migrate", "prepare", sp.Name)
	s.cutover(sp.Name)
	s.hostQueues()
	run := s.startLF("run", "--interval", "1s")
	s.mustLF("migrate", "start", sp.Name)
	waitFor(t, time.Minute, "hydration to begin", func() bool { return s.status(sp.Name).Progress.HydratedRegions > 0 })

	saved := filepath.Join(s.dir, "saveconfig.json")
	if err := lab.SaveConfig(saved); err != nil {
		t.Fatal(err)
	}
	full, err := lab.ReadSavedConfig(saved)
	if err != nil {
		t.Fatal(err)
	}
	so := plan.DMName(sp.Name)
	missing, err := full.Repoint(so, missingDMNode(t))
	if err != nil {
		t.Fatal(err)
	}
	other := otherDMDevice(t, s.suffix)
	wrong, err := full.Repoint(so, other)
	if err != nil {
		t.Fatal(err)
	}
	c := &unitCycles{s: s, sp: sp, admin: admin, run: run}
	c.restart("saved with lunferry's export", full, true)
	c.restart("saved without lunferry's export", full.Without(so, s.cfg.ExportIQN), true)
	w := s.stopWriter()
	s.labCmd("host", "unmount")
	c.restart("storage object on a missing device", missing, false)
	c.restart("storage object on another device ("+other+")", wrong, false)
	if u := c.res[2]; !slices.ContainsFunc(u.skipped, func(l string) bool { return strings.Contains(l, so) }) {
		t.Errorf("targetctl restore of %s on a missing device did not skip it: %q", so, u.skipped)
	}
	s.labCmd("host", "mount", "proxy")
	s.hostQueues()
	s.labCmd("writer", "start")
	n := s.writerStats().Writes()
	waitFor(t, 2*time.Minute, "the host to write through the proxy again", func() bool { return s.writerStats().Writes() > n })

	s.mustLF("migrate", "throttle", sp.Name, "unlimited")
	waitFor(t, 3*time.Minute, "hydration to complete", func() bool { return s.status(sp.Name).Step == plan.StepHydrated })
	out := c.run.stop()
	s.logf("lunferry run:\n%s", out)
	s.noneRefused(out)
	s.statusClean(sp.Name)
	s.stopWriter()
	if st := s.writerStats(); st.Errors != 0 || st.Mismatches != 0 {
		t.Fatalf("the host's writer saw errors: %+v", st)
	}
	v := s.labCmd("verify")
	for _, u := range c.res {
		t.Logf("RESULT %s", u)
	}
	t.Logf("RESULT writer (through the first two cycles) %d files, 0 errors, longest write+fsync %.1fs; %s; test %.0fs", w.Files, w.MaxWriteMs/1000, lastLine(v), time.Since(start).Seconds())
}

// adminTarget makes, with targetcli as an admin would, a target of the
// admin's own over a ramdisk storage object, and returns its names (WWN,
// storage object). lunferry must never remove it.
func (s *scene) adminTarget() []string {
	s.t.Helper()
	iqn, so := "iqn.2026-11.com.example:admin-"+s.suffix, "admin-"+s.suffix
	s.t.Cleanup(func() {
		// Also the lab's arrays: restored, they are in rtslib's HBAs,
		// where their own Down does not look.
		names := []string{iqn, so}
		for _, a := range s.cfg.Arrays {
			names = append(names, a.IQN, "labarray-"+a.Name)
		}
		if err := lab.RTSDelete(names...); err != nil {
			s.t.Errorf("cleanup: %v", err)
		}
	})
	for _, args := range [][]string{
		{"/backstores/ramdisk", "create", so, "1M"},
		{"/iscsi", "create", iqn},
		{"/iscsi/" + iqn + "/tpg1/luns", "create", "/backstores/ramdisk/" + so},
	} {
		vmtest.Exec(s.t, "targetcli", args...)
	}
	// targetcli adds a portal on 0.0.0.0:3260 if it can: it would take
	// the lab's portals' port.
	_ = exec.Command("targetcli", "/iscsi/"+iqn+"/tpg1/portals", "delete", "0.0.0.0", "3260").Run()
	return []string{iqn, "rd_mcp/" + so}
}

// hostQueues gives the host's session to the export the replacement
// timeout the README asks of a host with open-iscsi alone (300 s; Debian's
// default is 120 s): under emulation targetctl's clear and restore alone
// can take a minute or more.
func (s *scene) hostQueues() {
	s.t.Helper()
	dirs, _ := filepath.Glob("/sys/class/iscsi_session/session*")
	for _, d := range dirs {
		tn, _ := os.ReadFile(filepath.Join(d, "targetname"))
		in, _ := os.ReadFile(filepath.Join(d, "initiatorname"))
		if strings.TrimSpace(string(tn)) == s.cfg.ExportIQN && strings.TrimSpace(string(in)) == s.cfg.Host.IQN {
			if err := os.WriteFile(filepath.Join(d, "recovery_tmo"), []byte("300"), 0o644); err != nil {
				s.t.Fatal(err)
			}
			return
		}
	}
	s.t.Fatalf("no session of the host %s to the export %s", s.cfg.Host.IQN, s.cfg.ExportIQN)
}

// missingDMNode returns a /dev/dm-N that does not exist.
func missingDMNode(t *testing.T) string {
	for n := 200; ; n++ {
		p := fmt.Sprintf("/dev/dm-%d", n)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return p
		}
	}
}

// otherDMDevice makes a dm device that is not lunferry's (linear over a
// loop device) and returns its /dev/dm-N.
func otherDMDevice(t *testing.T, suffix string) string {
	loop := vmtest.LoopDevice(t, 8<<20)
	name := "lab-other-" + suffix
	vmtest.Exec(t, "dmsetup", "create", name, "--noudevsync", "--table", "0 16384 linear "+loop+" 0")
	t.Cleanup(func() {
		if out, err := exec.Command("dmsetup", "remove", "--noudevsync", name).CombinedOutput(); err != nil {
			t.Errorf("cleanup: dmsetup remove %s: %v\n%s", name, err, out)
		}
	})
	minor := strings.TrimSpace(vmtest.Exec(t, "dmsetup", "info", "-c", "--noheadings", "-o", "minor", name))
	return "/dev/dm-" + minor
}

// unitCycles restarts targetcli-fb's unit around a `lunferry run`.
type unitCycles struct {
	s     *scene
	sp    plan.Spec
	admin []string
	run   *background
	res   []unitCycle
}

// restart stops `lunferry run`, stops targetcli-fb's unit (`targetctl
// clear`), starts it with file c (`targetctl restore`) and starts run
// again. It waits for the export to serve lunferry's own device and, with
// host, for the host to write; the admin's objects must be there.
func (c *unitCycles) restart(what string, f lab.SavedConfig, host bool) {
	s := c.s
	s.t.Helper()
	u := unitCycle{what: what}
	file := filepath.Join(s.dir, fmt.Sprintf("restore-%d.json", len(c.res)))
	if err := f.Write(file); err != nil {
		s.t.Fatal(err)
	}
	out := c.run.stop()
	s.logf("lunferry run stopped:\n%s", out)
	s.noneRefused(out)
	stopped := time.Now()
	if err := lab.TargetctlClear(); err != nil {
		s.t.Fatal(err)
	}
	s.clearedAll()
	skipped, err := lab.TargetctlRestore(file)
	if err != nil {
		s.t.Fatal(err)
	}
	restored := time.Now()
	u.down = restored.Sub(stopped)
	s.logf("%s: targetctl clear and restore took %.1fs", what, u.down.Seconds())
	u.skipped = skipped
	n := s.writerStats().Writes()
	c.run = s.startLF("run", "--interval", "1s")
	waitFor(s.t, time.Minute, "the export to serve lunferry's own device ("+what+")", func() bool { return s.exportOnOwnDevice(c.sp) })
	u.rebuilt = time.Since(restored)
	if host {
		waitFor(s.t, 2*time.Minute, "the host to write through the proxy ("+what+")", func() bool { return s.writerStats().Writes() > n })
		u.served = time.Since(restored)
	}
	s.logf("%s; targetctl restore said: %q", u, skipped)
	tg, so, err := lab.LIOObjects()
	if err != nil {
		s.t.Fatal(err)
	}
	if !slices.Contains(tg, c.admin[0]) || !slices.Contains(so, c.admin[1]) {
		s.t.Errorf("%s: the admin's target %s or storage object %s is gone: targets %q, storage objects %q", what, c.admin[0], c.admin[1], tg, so)
	}
	c.res = append(c.res, u)
}

// clearedAll fails the test unless no LIO target or storage object is
// left.
func (s *scene) clearedAll() {
	s.t.Helper()
	tg, so, err := lab.LIOObjects()
	if err != nil || len(tg)+len(so) != 0 {
		s.t.Fatalf("after targetctl clear: targets %q, storage objects %q (%v)", tg, so, err)
	}
}

// exportOnOwnDevice reports whether lunferry's export serves the host over
// a storage object whose path is the volume's served dm device (the era
// device over the clone, or the clone itself without an era layer) and
// which holds that device (iblock's info against the node's rdev).
func (s *scene) exportOnOwnDevice(sp plan.Spec) bool {
	s.t.Helper()
	var dev, era string
	for _, o := range s.showVolume(sp.Name).Objects {
		switch o.Kind {
		case plan.ObjDevice:
			dev = o.Device
		case plan.ObjEra:
			era = o.Device
		}
	}
	if era != "" {
		dev = era
	}
	if dev == "" {
		return false
	}
	r := lio.NewRoot(lio.Options{})
	e, err := r.LookupStorageObject(lio.BackstoreBlock, plan.DMName(sp.Name))
	if err != nil || e.Dev != dev {
		return false
	}
	var st unix.Stat_t
	info, err := os.ReadFile(filepath.Join(e.Path, "info"))
	if err != nil || unix.Stat(dev, &st) != nil {
		return false
	}
	want := fmt.Sprintf("Major: %d Minor: %d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	if !strings.Contains(string(info), want) {
		return false
	}
	ts, err := r.Describe(context.Background(), sp.Export.IQN)
	return err == nil && ts.Owned && servesHost(ts.Config, plan.DMName(sp.Name), sp.HostIQN)
}

// servesHost: TPG 1 enabled, a LUN over storage object so mapped to host.
func servesHost(tc lio.TargetConfig, so, host string) bool {
	for _, g := range tc.TPGs {
		if g.Tag != 1 || !g.Enable {
			continue
		}
		for _, l := range g.LUNs {
			if strings.HasSuffix(l.StorageObject, "/"+so) && mapsLUN(g.NodeACLs, host, l.Index) {
				return true
			}
		}
	}
	return false
}

// mapsLUN: host's ACL maps TPG LUN index.
func mapsLUN(acls []lio.NodeACLConfig, host string, index uint64) bool {
	for _, a := range acls {
		for _, m := range a.MappedLUNs {
			if a.NodeWWN == host && m.TPGLUN == index {
				return true
			}
		}
	}
	return false
}

// noneRefused fails the test if `lunferry run` refused an object as not
// its own or unknown, or failed a restore.
func (s *scene) noneRefused(out string) {
	s.t.Helper()
	for _, l := range strings.Split(out, "\n") {
		low := strings.ToLower(l)
		if strings.Contains(low, "refus") || strings.Contains(low, "not lunferry's") || strings.Contains(low, "unknown") || strings.Contains(low, "restore failed") {
			s.t.Errorf("lunferry run: %s", l)
		}
	}
}

// statusClean fails the test unless status shows no drift, stray, error
// or unreachable array.
func (s *scene) statusClean(name string) {
	s.t.Helper()
	rep := s.statusReport(name)
	if len(rep.Strays) != 0 {
		s.t.Errorf("status lists strays: %q", rep.Strays)
	}
	for _, v := range rep.Volumes {
		if len(v.Drift) != 0 || v.LastError != "" || len(v.Unreachable) != 0 {
			s.t.Errorf("status of %s: drift %q, last error %q, unreachable %+v", v.Name, v.Drift, v.LastError, v.Unreachable)
		}
	}
}
