package kernel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/plan"
)

// sessionUser is one volume's use of a session to an array.
type sessionUser struct {
	volume, array string
	want          initiator.Timeouts
}

// sessions checks the proxy's sessions on lunferry's iface against the
// state (each logged in, with its volumes' timeouts in force) and each
// volume's export towards its host.
func (d *doctor) sessions(ctx context.Context) {
	vols, err := plan.Store{Dir: d.o.StateDir}.LoadAll()
	if err != nil {
		d.add("array sessions", false, "cannot read the state: "+err.Error(), "fix the state directory or file the error names, then rerun doctor")
		return
	}
	c, err := initiator.New(initiator.Options{Runner: d.o.Runner, Iscsiadm: d.o.Iscsiadm, SysRoot: d.o.SysRoot, DevRoot: d.o.DevRoot})
	if err == nil {
		var ss []initiator.Session
		if ss, err = c.Sessions(ctx); err == nil {
			for _, s := range ss {
				if s.Iface == c.Iface() {
					d.session(s, usersOf(vols, s))
				}
			}
		}
	}
	if err != nil {
		d.add("array sessions", false, err.Error(), "check that sysfs is mounted at "+d.o.SysRoot)
	}
	for _, v := range vols {
		if o := object(v, plan.ObjExport); o != nil && !o.Pending {
			d.export(v, usersOf(vols, initiator.Session{}))
		}
	}
}

// usersOf lists the volumes whose state records a session to s's target
// and portal (with a zero s: every volume's array sessions).
func usersOf(vols []*plan.Volume, s initiator.Session) []sessionUser {
	var out []sessionUser
	for _, v := range vols {
		for _, a := range []struct {
			array string
			kind  plan.ObjectKind
			lun   plan.LUN
		}{{"old", plan.ObjOldLogin, v.Spec.Old}, {"new", plan.ObjNewLogin, v.Spec.New}} {
			if object(v, a.kind) == nil {
				continue
			}
			p, err := initiator.ParsePortal(a.lun.Portal)
			if s.TargetIQN != "" && (err != nil || !p.Equal(s.Portal) || !strings.EqualFold(a.lun.IQN, s.TargetIQN)) {
				continue
			}
			out = append(out, sessionUser{volume: v.Spec.Name, array: a.array, want: a.lun.SessionTimeouts.Initiator()})
		}
	}
	return out
}

func object(v *plan.Volume, kind plan.ObjectKind) *plan.Object {
	for i := range v.Objects {
		if v.Objects[i].Kind == kind {
			return &v.Objects[i]
		}
	}
	return nil
}

// session checks one session of lunferry's iface: a volume uses it, it is
// logged in, and its timeouts in force are those each user's runbook asks
// for.
func (d *doctor) session(s initiator.Session, users []sessionUser) {
	name := fmt.Sprintf("session %d to %s %s", s.SID, s.Portal, s.TargetIQN)
	inForce := fmt.Sprintf("%s; replacement %s, noop %s/%s", s.State, s.RecoveryTimeout, s.NoopOutInterval, s.NoopOutTimeout)
	if len(users) == 0 {
		d.add(name, false, inForce+"; no volume's state records it",
			fmt.Sprintf("a leftover (a volume forgotten with --forget?): if nothing uses its disks, iscsiadm -m node -T %s -p %s -I %s --logout", s.TargetIQN, s.Portal, initiator.DefaultIface))
		return
	}
	var used, diffs []string
	for _, u := range users {
		used = append(used, u.volume+" ("+u.array+")")
		for _, diff := range u.want.Differences(s) {
			diffs = append(diffs, u.volume+": "+diff)
		}
	}
	detail := inForce + "; used by " + strings.Join(used, ", ")
	if !s.LoggedIn() {
		d.add(name, false, detail+": the array is unreachable, its I/O waits up to "+s.RecoveryTimeout.String(),
			"check the network path to the array and its target; iscsid logs in again by itself once the array answers (`lunferry migrate status` says since when)")
		return
	}
	if len(diffs) > 0 {
		d.add(name, false, detail+"; differs from the runbook: "+strings.Join(diffs, "; "),
			fmt.Sprintf("echo <seconds> > %s sets the replacement timeout live; the NOP-Out settings apply at the session's next login (lunferry never logs out a session in use to apply them)",
				filepath.Join(d.o.SysRoot, "class", "iscsi_session", fmt.Sprintf("session%d", s.SID), "recovery_tmo")))
		return
	}
	d.add(name, true, detail, "")
}

// export checks what LIO does towards a volume's host: it pings the host
// (NOP-In) every nopin_timeout seconds and drops a session that does not
// answer within nopin_response_timeout, freeing its commands, so that a
// host that lost its path logs in afresh. 0 switches the pings off. The
// detail says how long the host must be willing to wait (its own timeouts
// are set on the host: README, "Host timeouts").
func (d *doctor) export(v *plan.Volume, all []sessionUser) {
	name := "export " + v.Spec.Export.IQN
	acl := filepath.Join(d.o.ConfigFSRoot, "iscsi", v.Spec.Export.IQN, "tpgt_1", "acls", v.Spec.HostIQN, "attrib")
	nopin, err1 := os.ReadFile(filepath.Join(acl, "nopin_timeout"))
	resp, err2 := os.ReadFile(filepath.Join(acl, "nopin_response_timeout"))
	if err1 != nil || err2 != nil {
		d.add(name, false, "no ACL for "+v.Spec.HostIQN+" under "+filepath.Dir(acl),
			"`lunferry migrate status "+v.Spec.Name+"` shows the drift; `lunferry restore` rebuilds the export")
		return
	}
	longest := time.Duration(0)
	for _, u := range all {
		if u.volume == v.Spec.Name {
			longest = max(longest, u.want.ReplacementTimeout)
		}
	}
	n, r := strings.TrimSpace(string(nopin)), strings.TrimSpace(string(resp))
	detail := fmt.Sprintf("host %s: NOP-In every %ss, session dropped after %ss without answer; in an array outage the proxy holds the host's I/O up to %s: the host must queue I/O longer than that and than the proxy's reboot (README: Host timeouts)",
		v.Spec.HostIQN, n, r, longest)
	d.add(name, n != "0", detail, "echo 15 > "+filepath.Join(acl, "nopin_timeout")+" (LIO's default): without NOP-Ins a host that lost its path keeps a dead session here until TCP gives up")
}
