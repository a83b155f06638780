package kernel

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
)

// DryRunPorts returns ports that print to w every iscsiadm call, dm table
// line and message, LIO export (as the targetcli saveconfig JSON of the
// objects it would create) and metadata file operation a step would make,
// and make none. Lookups find nothing, except device-mapper reads (lookups,
// clone status, list), which go to the real kernel when it can be read, so
// that a dry run of finalize sees the live hydration: a dry run shows the
// full set of actions of a step from its current state. Disks found are
// placeholders named after their LUN, sized 0 (unknown): size checks are
// skipped.
//
// The export is applied to a lio.Recorder in dry-run mode over the real
// configfs at o.ConfigFSRoot (reads pass through, writes are printed), so
// the printed configfs writes are exactly those lio would make; where
// configfs cannot be read (not root, no LIO), a summary is printed instead.
func DryRunPorts(w io.Writer, o Options) plan.Ports {
	d := &dry{w: w, iface: initiator.DefaultIface, configfsRoot: o.ConfigFSRoot}
	return plan.Ports{Initiator: d, Mapper: dryMapper{d, &mapper{opts: o.dm()}}, Exporter: dryExporter{d},
		Metadata: dryMeta{d}, Hooks: dryHooks{d}, Fencer: dryFencer{d}, Inhibitor: plan.NoInhibitor{}, Regulator: dryRegulator{},
		Secrets: drySecrets{d}, Era: dryEras{d}, OldWriter: dryOldWriter{d}}
}

// dry prints, and is the dry-run initiator.
type dry struct {
	w            io.Writer
	iface        string
	configfsRoot string
}

func (d *dry) printf(format string, args ...any) {
	fmt.Fprintf(d.w, "[dry-run] "+format+"\n", args...)
}

func (d *dry) Login(ctx context.Context, t plan.Target) error {
	auth := ""
	if t.CHAP != nil {
		auth = fmt.Sprintf(" (CHAP user %s, secret from %s, written to the node record file, never on argv)", t.CHAP.Username, chapFiles(t.CHAP))
	}
	if c := t.DiscoveryCHAP; c != nil {
		db := "iscsiadm -m discoverydb -t sendtargets -p " + t.Portal
		d.printf("%s -o new", db)
		d.printf("%s -o update -n discovery.sendtargets.auth.authmethod -v CHAP (CHAP user %s, secret from %s, written to the discovery record file, never on argv)",
			db, c.Username, chapFiles(c))
		d.printf("%s --discover -o nonpersistent", db)
		d.printf("%s -o delete", db)
	} else {
		d.printf("iscsiadm -m discovery -t sendtargets -p %s -o nonpersistent", t.Portal)
	}
	d.printf("iscsiadm -m node -T %s -p %s -I %s -o new", t.IQN, t.Portal, d.iface)
	to := t.Timeouts.WithDefaults()
	d.printf("iscsiadm -m node -T %s -p %s -I %s -o update -n node.session.timeo.replacement_timeout -v %d -n node.conn[0].timeo.noop_out_interval -v %d -n node.conn[0].timeo.noop_out_timeout -v %d -n node.session.auth.authmethod -v %s%s",
		t.IQN, t.Portal, d.iface, int(to.ReplacementTimeout.Seconds()), int(to.NoopOutInterval.Seconds()), int(to.NoopOutTimeout.Seconds()),
		map[bool]string{true: "CHAP", false: "None"}[t.CHAP != nil], auth)
	d.printf("iscsiadm -m node -T %s -p %s -I %s --login", t.IQN, t.Portal, d.iface)
	return nil
}

func (d *dry) Logout(ctx context.Context, t plan.Target) error {
	d.printf("iscsiadm -m node -T %s -p %s -I %s --logout", t.IQN, t.Portal, d.iface)
	d.printf("iscsiadm -m node -T %s -p %s -I %s -o delete", t.IQN, t.Portal, d.iface)
	return nil
}

func (d *dry) FindDisk(ctx context.Context, t plan.Target, lun int) (plan.Disk, error) {
	p := fmt.Sprintf("<disk of %s lun %d>", t, lun)
	d.printf("find %s in /sys/class/iscsi_session/*/device/target*/*:*:*:%d/block", p, lun)
	return plan.Disk{Path: p}, nil
}

func (d *dry) HasSession(ctx context.Context, t plan.Target) (bool, error) { return false, nil }

func (d *dry) SessionState(ctx context.Context, t plan.Target) (initiator.Session, bool, error) {
	return initiator.Session{}, false, nil
}

func (d *dry) Identity(ctx context.Context, disk string) (scsi.Identity, error) {
	d.printf("read the SCSI identity of %s (INQUIRY, VPD 0x00/0x80/0x83/0xB0/0xB2, READ CAPACITY(16) over SG_IO)", disk)
	return scsi.Identity{}, nil
}

func (d *dry) Reservations(ctx context.Context, disk string) (scsi.Reservations, error) {
	d.printf("read the persistent reservations of %s (PERSISTENT RESERVE IN over SG_IO)", disk)
	return scsi.Reservations{}, nil
}

func (d *dry) SetReadOnly(ctx context.Context, disk string) error {
	d.printf("ioctl BLKROSET 1 on %s (blockdev --setro)", disk)
	return nil
}

type dryMeta struct{ d *dry }

func (m dryMeta) CreateFile(ctx context.Context, path string, size uint64) (string, error) {
	m.d.printf("create sparse file %s of %d bytes (%s)", path, size, plan.Bytes(size))
	m.d.printf("zero the first 4096 bytes of %s", path)
	m.d.printf("attach %s to a free loop device (LOOP_CTL_GET_FREE, LOOP_CONFIGURE)", path)
	return "/dev/<loop of " + path + ">", nil
}

func (m dryMeta) AttachFile(ctx context.Context, path string, size uint64) (string, error) {
	m.d.printf("check that %s exists and holds %d bytes; attach it to a loop device (never created, grown or zeroed)", path, size)
	return "/dev/<loop of " + path + ">", nil
}

func (m dryMeta) Attached(ctx context.Context, path string) (string, bool, error) {
	return "", false, nil
}

func (m dryMeta) Superblock(ctx context.Context, dev string) (dm.CloneSuperblock, error) {
	m.d.printf("read the dm-clone superblock of %s (it must be this volume's)", dev)
	return dm.CloneSuperblock{}, dm.ErrNoCloneSuperblock
}

func (m dryMeta) DetachFile(ctx context.Context, path string, remove bool) error {
	m.d.printf("detach the loop device of %s (LOOP_CLR_FD)", path)
	if remove {
		m.d.printf("delete %s", path)
	}
	return nil
}

func (m dryMeta) ZeroDevice(ctx context.Context, dev string, minSize uint64) error {
	m.d.printf("check that %s holds at least %d bytes; zero its first 4096 bytes", dev, minSize)
	return nil
}

type dryHooks struct{ d *dry }

func (h dryHooks) Run(ctx context.Context, path string, env []string, timeout time.Duration, logPath string) error {
	h.d.printf("run hook %s", path)
	return nil
}

// Check refuses what the real run refuses, except that a hook not owned by
// root or writable by others is only reported: a rehearsal may run as
// another user, on hooks not yet installed.
func (h dryHooks) Check(path string) error {
	if err := checkExecutable(path); err != nil {
		return err
	}
	if err := checkHookOwner(path, 0); err != nil {
		h.d.printf("hook %s: %v (the real run refuses it)", path, err)
	}
	return nil
}

type dryRegulator struct{}

func (dryRegulator) Regulate(string, dm.CloneStatus, time.Time, clone.Rate) []string { return nil }
func (dryRegulator) Wake(string) (time.Time, bool)                                   { return time.Time{}, false }
func (dryRegulator) Forget(string)                                                   {}
func (dryRegulator) Yield(_ string, _ dm.IOCounters, _ uint64, _ time.Time, ceiling clone.Rate, _ float64) clone.Rate {
	return ceiling
}
