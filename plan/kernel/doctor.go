package kernel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/plan"
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

func (o DoctorOptions) withDefaults() DoctorOptions {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.SysRoot, "/sys")
	def(&o.DevRoot, "/dev")
	def(&o.ConfigFSRoot, "/sys/kernel/config/target")
	def(&o.Iscsiadm, "iscsiadm")
	def(&o.InitiatorNameFile, "/etc/iscsi/initiatorname.iscsi")
	if o.Runner == nil {
		o.Runner = initiator.ExecRunner{}
	}
	if o.DMTargets == nil {
		o.DMTargets = dmTargets(dm.Options{SysRoot: o.SysRoot, DevRoot: o.DevRoot})
	}
	return o
}

// Doctor checks that the proxy has what a migration needs, and says how
// to fix each gap: root, device-mapper and its clone target, loop devices,
// configfs and LIO (core, iblock, iSCSI fabric), iscsi_tcp, iscsiadm and a
// running iscsid, open-iscsi's initiator name, a writable state directory,
// and for the volumes in the state: each session of lunferry's iface
// logged in with the runbook's timeouts, each export's NOP-Ins towards
// its host.
func Doctor(ctx context.Context, o DoctorOptions) []Check {
	d := &doctor{o: o.withDefaults()}
	d.add("root", d.o.Euid == 0, fmt.Sprintf("effective uid %d", d.o.Euid), "run lunferry as root (sudo)")
	d.deviceMapper(ctx)
	loopCtl := filepath.Join(d.o.DevRoot, "loop-control")
	d.present("loop devices", loopCtl, d.exists(loopCtl),
		"modprobe loop (needed for file-backed metadata; or give each volume a metadata device)")
	d.lio()
	d.module("iSCSI initiator transport", "iscsi_tcp")
	d.iscsiadm(ctx)
	d.initiatorName()
	d.stateDir()
	d.sessions(ctx)
	return d.checks
}

// doctor collects the checks of one Doctor call.
type doctor struct {
	o      DoctorOptions
	checks []Check
}

func (d *doctor) add(name string, ok bool, detail, fix string) {
	c := Check{Name: name, OK: ok, Detail: detail}
	if !ok {
		c.Fix = fix
	}
	d.checks = append(d.checks, c)
}

func (d *doctor) exists(p string) bool { _, err := os.Stat(p); return err == nil }

func (d *doctor) loaded(m string) bool { return d.exists(filepath.Join(d.o.SysRoot, "module", m)) }

// present adds a check of a path that must exist.
func (d *doctor) present(name, path string, ok bool, fix string) {
	d.add(name, ok, path+map[bool]string{true: " present", false: " missing"}[ok], fix)
}

// module adds a check of a kernel module that must be loaded.
func (d *doctor) module(name, m string) {
	ok := d.loaded(m)
	d.add(name, ok, m+" "+map[bool]string{true: "loaded", false: "not loaded"}[ok], "modprobe "+m)
}

// deviceMapper checks dm_mod and the clone target.
func (d *doctor) deviceMapper(ctx context.Context) {
	dmOK := d.exists(filepath.Join(d.o.SysRoot, "class", "misc", "device-mapper"))
	d.add("device-mapper", dmOK, "dm_mod "+map[bool]string{true: "loaded", false: "not loaded"}[dmOK], "modprobe dm_mod")
	cloneOK, detail := false, "dm_mod not loaded"
	if dmOK {
		names, err := d.o.DMTargets(ctx)
		switch {
		case err != nil:
			detail = "cannot list dm targets: " + err.Error()
		case slices.Contains(names, "clone"):
			cloneOK, detail = true, "clone target available"
		case d.loaded("dm_clone"):
			cloneOK, detail = true, "dm_clone module loaded"
		default:
			detail = "no clone target among " + strings.Join(names, ",")
		}
	}
	d.add("dm-clone", cloneOK, detail, cloneFix)
	if dmOK {
		d.eraTarget(ctx)
	}
}

// eraTarget checks the era target, which cutover builds over the clone.
func (d *doctor) eraTarget(ctx context.Context) {
	names, err := d.o.DMTargets(ctx)
	ok := err == nil && (slices.Contains(names, "era") || d.loaded("dm_era"))
	d.add("dm-era", ok, map[bool]string{true: "era target available", false: "no era target (dm_era)"}[ok], "modprobe dm_era (CONFIG_DM_ERA)")
}

// cloneFix is the dm-clone check's fix: the module, or on Debian (built
// without CONFIG_DM_CLONE) the package that builds it through DKMS.
const cloneFix = `modprobe dm_clone; on Debian, whose kernels lack it, install lunferry-dm-clone-dkms ` +
	`(apt install ./lunferry-dm-clone-dkms_*.deb, built by make deb: DKMS builds dm-clone.ko for each installed kernel ` +
	`from its linux-source-<major.minor> package), then modprobe dm_clone`

// dmTargets lists the target types device-mapper has loaded.
func dmTargets(o dm.Options) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		c, err := dm.Open(o)
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

// lio checks configfs and LIO's core, iblock backstore and iSCSI fabric.
func (d *doctor) lio() {
	parent := filepath.Dir(d.o.ConfigFSRoot)
	entries, _ := os.ReadDir(parent)
	mounted := len(entries) > 0
	d.add("configfs", mounted, parent+map[bool]string{true: " mounted", false: " empty or missing"}[mounted],
		"mount -t configfs configfs "+parent)
	d.present("LIO core", d.o.ConfigFSRoot, d.exists(d.o.ConfigFSRoot), "modprobe target_core_mod")
	d.module("LIO iblock backstore", "target_core_iblock")
	d.module("LIO iSCSI target", "iscsi_target_mod")
}

// iscsiadm checks that iscsiadm runs and, if it does, that iscsid answers.
func (d *doctor) iscsiadm(ctx context.Context) {
	adm := d.o.Iscsiadm
	_, _, code, err := d.o.Runner.Run(ctx, adm, []string{"--version"}, nil)
	ok := err == nil && code == 0
	d.add("iscsiadm", ok, adm+map[bool]string{true: " runs", false: " not runnable"}[ok],
		"install open-iscsi (Debian/Ubuntu: apt install open-iscsi; RHEL-like: dnf install iscsi-initiator-utils)")
	if !ok {
		return
	}
	_, serr, code, err := d.o.Runner.Run(ctx, adm, []string{"-m", "session"}, nil)
	// 0: sessions listed; 21 (ISCSI_ERR_NO_OBJS_FOUND): none.
	ok = err == nil && (code == 0 || code == 21)
	detail := "iscsid answers"
	if !ok {
		detail = fmt.Sprintf("iscsiadm -m session exit %d: %s", code, strings.TrimSpace(string(serr)))
	}
	d.add("iscsid", ok, detail, "start iscsid: systemctl enable --now iscsid (or run iscsid)")
}

// initiatorName checks open-iscsi's initiator name: the arrays' ACLs must
// admit it.
func (d *doctor) initiatorName() {
	file := d.o.InitiatorNameFile
	name := ""
	if b, err := os.ReadFile(file); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "InitiatorName="); ok {
				name = strings.TrimSpace(v)
			}
		}
	}
	detail := file + ": " + name
	if name == "" {
		detail = file + ": no InitiatorName= line"
	}
	d.add("initiator name", plan.ValidIQN(name), detail,
		"write InitiatorName=iqn.YYYY-MM.your.domain:proxy to "+file+" (the arrays must admit this IQN), then restart iscsid")
}

// stateDir checks that a file can be made in the state directory.
func (d *doctor) stateDir() {
	ok, detail := true, d.o.StateDir+" writable"
	if err := os.MkdirAll(d.o.StateDir, 0o700); err != nil {
		ok, detail = false, err.Error()
	} else if f, err := os.CreateTemp(d.o.StateDir, ".doctor*"); err != nil {
		ok, detail = false, err.Error()
	} else {
		f.Close()
		os.Remove(f.Name())
	}
	d.add("state directory", ok, detail, "give a writable --state-dir (default /var/lib/lunferry)")
}
