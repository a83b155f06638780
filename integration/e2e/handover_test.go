package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lunferry/lunferry/integration/lab"
	"github.com/lunferry/lunferry/plan"
)

// handoverHooks are the lab's handover hooks: pre-handover moves the host
// from the proxy's export to the new array (and restarts its writer
// there), post-handover takes the proxy's ACL off the new LUN.
func (s *scene) handoverHooks(h *plan.Hooks) {
	h.PreHandover = []string{s.hook("pre-handover")}
	h.PostHandover = []string{s.hook("post-handover")}
}

// initiatorSessions lists the iSCSI sessions of the machine (the proxy's
// and the lab host's) as "iface target" pairs, from sysfs.
func initiatorSessions() []string {
	all, _ := filepath.Glob("/sys/class/iscsi_session/session*")
	var out []string
	for _, s := range all {
		iface, _ := os.ReadFile(filepath.Join(s, "ifacename"))
		tn, _ := os.ReadFile(filepath.Join(s, "targetname"))
		out = append(out, strings.TrimSpace(string(iface))+" "+strings.TrimSpace(string(tn)))
	}
	return out
}

// finalizedObjects is how many of proxyObjects a finalized volume has: the
// era device, the linear device below it, the export's LIO target and
// storage object, the session to the new LUN.
const finalizedObjects = 5

// proxyObjects lists what of the proxy's objects for a volume is left in
// the kernel: the dm devices (era layer and device), the export's LIO target, its storage object,
// and any session of an initiator other than the lab host to the old or
// the new LUN.
func (s *scene) proxyObjects(sp plan.Spec) []string {
	var left []string
	for _, n := range []string{plan.EraName(sp.Name), plan.DMName(sp.Name)} {
		if out, err := lab.ExecOut("dmsetup", "info", n); err == nil {
			left = append(left, "dm device: "+strings.TrimSpace(out))
		}
	}
	if _, err := os.Stat(filepath.Join(lab.DefaultConfigFS, "iscsi", sp.Export.IQN)); err == nil {
		left = append(left, "LIO target "+sp.Export.IQN)
	}
	sos, _ := filepath.Glob(filepath.Join(lab.DefaultConfigFS, "core", "*", plan.DMName(sp.Name)))
	for _, so := range sos {
		left = append(left, "LIO storage object "+so)
	}
	for _, sess := range initiatorSessions() {
		iface, tn, _ := strings.Cut(sess, " ")
		if iface != s.cfg.Host.Iface && (tn == sp.New.IQN || tn == sp.Old.IQN) {
			left = append(left, fmt.Sprintf("proxy session (iface %s) to %s", iface, tn))
		}
	}
	return left
}

// handoverRefused runs `lunferry migrate handover` with a pre-handover
// hook that leaves the host on the proxy's export (the lab hook with
// LUNFERRY_LAB_HOST_STAYS=1): lunferry must refuse with "not ready", name
// the fix, and leave the proxy serving the host.
func (s *scene) handoverRefused(sp plan.Spec) {
	s.t.Helper()
	r := s.lunferryEnv([]string{"LUNFERRY_LAB_HOST_STAYS=1"}, "migrate", "handover", sp.Name)
	if r.code != exitNotReady {
		s.t.Fatalf("handover with the host still on the export: want exit %d: %s", exitNotReady, r)
	}
	for _, p := range []string{
		"host " + s.cfg.Host.IQN + " still has a session on the proxy's export " + sp.Export.IQN,
		"log out of " + sp.Export.IQN + " and log in to the new array",
		"rerun `lunferry migrate handover " + sp.Name + "`",
	} {
		if !strings.Contains(r.stderr, p) {
			s.t.Errorf("handover refusal does not say %q: %s", p, r)
		}
	}
	s.logf("handover with the host still on the export (%.1fs): exit %d: %s", r.took.Seconds(), r.code, strings.TrimSpace(r.stderr))
	// Era device, device, target, storage object, session to the new LUN.
	if left := s.proxyObjects(sp); len(left) != finalizedObjects {
		s.t.Fatalf("after the refused handover, want the proxy's %d objects, have:\n%s", finalizedObjects, strings.Join(left, "\n"))
	}
	if hs := s.cfg.Host.Sessions(); !slices.Equal(hs, []string{sp.Export.IQN}) {
		s.t.Fatalf("host sessions after the refused handover: %v, want only the export", hs)
	}
}

// handover retires the proxy the way an admin's runbook does: `lunferry
// migrate handover` (its pre-handover hook moves the host, whose writer
// runs through the proxy, to the new array; post-handover unmaps the new
// LUN from the proxy). It checks the command's exit code and output, that
// nothing of the proxy is left for the volume, that the host writes to the
// new LUN directly without error, then the new LUN reached directly:
// e2fsck -fn and every file's checksum. It returns the handover's duration
// and verify's summary; the volume is removed from lunferry's state.
func (s *scene) handover(sp plan.Spec) (time.Duration, string) {
	s.t.Helper()
	t := s.t
	r := s.lunferry("migrate", "handover", sp.Name)
	if r.code != 0 {
		t.Fatalf("migrate handover %s: %s", sp.Name, r)
	}
	s.logf("handover took %.1fs: %s", r.took.Seconds(), strings.TrimSpace(r.stdout))
	want := fmt.Sprintf("volume %s handed over: the host uses %s lun %d on the new array directly", sp.Name, sp.New.IQN, sp.New.LUN)
	if !strings.Contains(r.stdout, want) {
		t.Errorf("handover output lacks %q: %s", want, r)
	}
	st := s.status(sp.Name)
	if st.Step != plan.StepHandedOver || len(st.Sessions) != 0 {
		t.Errorf("after handover: step %s, export sessions %v", st.Step, st.Sessions)
	}
	if left := s.proxyObjects(sp); len(left) > 0 {
		t.Fatalf("left of the proxy after handover:\n%s", strings.Join(left, "\n"))
	}
	if hs := s.cfg.Host.Sessions(); !slices.Equal(hs, []string{sp.New.IQN}) {
		t.Fatalf("host sessions after handover: %v, want only the new array %s", hs, sp.New.IQN)
	}
	if acls, err := s.cfg.Arrays["new"].ACLList(); err != nil || !slices.Equal(acls, []string{s.cfg.Host.IQN}) {
		t.Errorf("new array ACLs after handover: %v (%v), want only the host", acls, err)
	}

	// The host writes to the new LUN directly (the hook restarted the
	// writer there).
	n := s.writerStats().Writes()
	waitFor(t, time.Minute, "the writer to write to the new LUN directly", func() bool { return s.writerStats().Writes() > n+10 })
	direct := s.stopWriter()
	if direct.Errors != 0 || direct.Mismatches != 0 || direct.Writes() == 0 {
		t.Fatalf("writer on the new LUN directly: %+v", direct)
	}
	s.logf("writer on the new LUN directly: %d files, %d errors, longest write %.0f ms", direct.Files, direct.Errors, direct.MaxWriteMs)

	// The new LUN, as the host reaches it: fsck and every file's checksum.
	if err := s.cfg.Host.Unmount(); err != nil {
		t.Fatal(err)
	}
	disk := s.cfg.Host.SessionDisk(sp.New.IQN)
	if disk == "" {
		t.Fatalf("no disk behind the host's session to %s", sp.New.IQN)
	}
	out := s.labCmd("verify", "-dev", "/dev/"+disk)
	if !strings.Contains(out, "verified") {
		t.Fatalf("verify: %s", out)
	}
	s.logf("new LUN alone (/dev/%s): %s", disk, lastLine(out))
	s.labCmd("host", "unmount")
	if r := s.mustLF("volume", "remove", sp.Name); !strings.Contains(r.stdout, "removed") {
		t.Errorf("volume remove after handover: %s", r)
	}
	return r.took, lastLine(out)
}
