package plan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
)

// Check is one preflight check.
type Check struct {
	// Name says what is checked.
	Name string `json:"name"`
	// OK is true when nothing is missing.
	OK bool `json:"ok"`
	// Detail says what was found.
	Detail string `json:"detail"`
	// Fix tells the admin how to close the gap.
	Fix string `json:"fix,omitempty"`
}

// DoctorOptions configure Doctor.
type DoctorOptions struct {
	// SysRoot, DevRoot and ConfigFSRoot are the kernel roots (defaults
	// /sys, /dev, /sys/kernel/config/target).
	SysRoot, DevRoot, ConfigFSRoot string
	// StateDir must be writable.
	StateDir string
	// Iscsiadm is the iscsiadm program; Runner runs it.
	Iscsiadm string
	Runner   initiator.Runner
	// DMTargets lists the loaded device-mapper target types (nil: open the
	// dm control node under DevRoot).
	DMTargets func(ctx context.Context) ([]string, error)
	// Euid is the effective uid (lunferry needs root).
	Euid int
	// InitiatorNameFile is open-iscsi's initiator name file (default
	// /etc/iscsi/initiatorname.iscsi); the arrays' ACLs name the IQN in it.
	InitiatorNameFile string
}

// Doctor checks that the proxy has what a migration needs, and says how
// to fix each gap: root, device-mapper and its clone target, loop devices,
// configfs and LIO (core, iblock, iSCSI fabric), iscsi_tcp, iscsiadm and a
// running iscsid, and a writable state directory.
func Doctor(ctx context.Context, o DoctorOptions) []Check {
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.ConfigFSRoot == "" {
		o.ConfigFSRoot = "/sys/kernel/config/target"
	}
	if o.Iscsiadm == "" {
		o.Iscsiadm = "iscsiadm"
	}
	if o.Runner == nil {
		o.Runner = initiator.ExecRunner{}
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	module := func(m string) bool { return exists(filepath.Join(o.SysRoot, "module", m)) }
	var cs []Check
	add := func(name string, ok bool, detail, fix string) {
		c := Check{Name: name, OK: ok, Detail: detail}
		if !ok {
			c.Fix = fix
		}
		cs = append(cs, c)
	}

	add("root", o.Euid == 0, fmt.Sprintf("effective uid %d", o.Euid), "run lunferry as root (sudo)")

	dmOK := exists(filepath.Join(o.SysRoot, "class", "misc", "device-mapper"))
	add("device-mapper", dmOK, "dm_mod "+map[bool]string{true: "loaded", false: "not loaded"}[dmOK], "modprobe dm_mod")

	cloneOK, cloneDetail := false, "dm_mod not loaded"
	if dmOK {
		list := o.DMTargets
		if list == nil {
			list = func(ctx context.Context) ([]string, error) {
				c, err := dm.Open(dm.Options{SysRoot: o.SysRoot, DevRoot: o.DevRoot})
				if err != nil {
					return nil, err
				}
				defer c.Close()
				vs, err := c.TargetVersions(ctx)
				if err != nil {
					return nil, err
				}
				var names []string
				for _, v := range vs {
					names = append(names, v.Name)
				}
				return names, nil
			}
		}
		names, err := list(ctx)
		switch {
		case err != nil:
			cloneDetail = "cannot list dm targets: " + err.Error()
		case contains(names, "clone"):
			cloneOK, cloneDetail = true, "clone target available"
		case module("dm_clone"):
			cloneOK, cloneDetail = true, "dm_clone module loaded"
		default:
			cloneDetail = "no clone target among " + strings.Join(names, ",")
		}
	}
	add("dm-clone", cloneOK, cloneDetail, (&dm.TargetMissingError{Type: "clone", Module: "dm_clone"}).Error())

	loopOK := exists(filepath.Join(o.DevRoot, "loop-control"))
	add("loop devices", loopOK, filepath.Join(o.DevRoot, "loop-control")+map[bool]string{true: " present", false: " missing"}[loopOK],
		"modprobe loop (needed for file-backed metadata; or give each volume a metadata device)")

	cfgParent := filepath.Dir(o.ConfigFSRoot)
	entries, _ := os.ReadDir(cfgParent)
	cfgMounted := len(entries) > 0
	add("configfs", cfgMounted, cfgParent+map[bool]string{true: " mounted", false: " empty or missing"}[cfgMounted],
		"mount -t configfs configfs "+cfgParent)
	lioOK := exists(o.ConfigFSRoot)
	add("LIO core", lioOK, o.ConfigFSRoot+map[bool]string{true: " present", false: " missing"}[lioOK], "modprobe target_core_mod")
	ib := module("target_core_iblock")
	add("LIO iblock backstore", ib, "target_core_iblock "+loaded(ib), "modprobe target_core_iblock")
	it := module("iscsi_target_mod")
	add("LIO iSCSI target", it, "iscsi_target_mod "+loaded(it), "modprobe iscsi_target_mod")
	tcp := module("iscsi_tcp")
	add("iSCSI initiator transport", tcp, "iscsi_tcp "+loaded(tcp), "modprobe iscsi_tcp")

	_, _, code, err := o.Runner.Run(ctx, o.Iscsiadm, []string{"--version"}, nil)
	haveAdm := err == nil && code == 0
	add("iscsiadm", haveAdm, o.Iscsiadm+map[bool]string{true: " runs", false: " not runnable"}[haveAdm],
		"install open-iscsi (Debian/Ubuntu: apt install open-iscsi; RHEL-like: dnf install iscsi-initiator-utils)")
	if haveAdm {
		_, serr, code, err := o.Runner.Run(ctx, o.Iscsiadm, []string{"-m", "session"}, nil)
		// 0: sessions listed; 21 (ISCSI_ERR_NO_OBJS_FOUND): none.
		ok := err == nil && (code == 0 || code == 21)
		detail := "iscsid answers"
		if !ok {
			detail = fmt.Sprintf("iscsiadm -m session exit %d: %s", code, strings.TrimSpace(string(serr)))
		}
		add("iscsid", ok, detail, "start iscsid: systemctl enable --now iscsid (or run iscsid)")
	}

	if o.InitiatorNameFile == "" {
		o.InitiatorNameFile = "/etc/iscsi/initiatorname.iscsi"
	}
	name := ""
	if b, err := os.ReadFile(o.InitiatorNameFile); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "InitiatorName="); ok {
				name = strings.TrimSpace(v)
			}
		}
	}
	nameOK := ValidIQN(name)
	nameDetail := o.InitiatorNameFile + ": " + name
	if name == "" {
		nameDetail = o.InitiatorNameFile + ": no InitiatorName= line"
	}
	add("initiator name", nameOK, nameDetail,
		"write InitiatorName=iqn.YYYY-MM.your.domain:proxy to "+o.InitiatorNameFile+" (the arrays must admit this IQN), then restart iscsid")

	stOK, stDetail := true, o.StateDir+" writable"
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		stOK, stDetail = false, err.Error()
	} else if f, err := os.CreateTemp(o.StateDir, ".doctor*"); err != nil {
		stOK, stDetail = false, err.Error()
	} else {
		f.Close()
		os.Remove(f.Name())
	}
	add("state directory", stOK, stDetail, "give a writable --state-dir (default /var/lib/lunferry)")
	return cs
}

func loaded(ok bool) string {
	if ok {
		return "loaded"
	}
	return "not loaded"
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}
