package plan

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/lio"
)

// DryRunPorts returns ports that print to w every iscsiadm call, dm table
// line and message, LIO export (as the targetcli saveconfig JSON of the
// objects it would create) and metadata file operation a step would make,
// and make none. Lookups find nothing, so a dry run shows the full set of
// actions of a step from its current state. Disks found are placeholders
// named after their LUN, sized 0 (unknown): size checks are skipped.
//
// The export is applied to a lio.Recorder in dry-run mode over the real
// configfs at configfsRoot (reads pass through, writes are printed), so the
// printed configfs writes are exactly those lio would make; where configfs
// cannot be read (not root, no LIO), a summary is printed instead.
func DryRunPorts(w io.Writer, configfsRoot string) Ports {
	return dryRunPorts(w, configfsRoot, nil)
}

// KernelDryRunPorts is DryRunPorts whose device-mapper reads (lookups,
// clone status) go to the real kernel when it can be read, so that a dry
// run of finalize sees the live hydration.
func KernelDryRunPorts(w io.Writer, o KernelOptions) Ports {
	return dryRunPorts(w, o.ConfigFSRoot, &kernelMapper{opts: dmOptions(o)})
}

func dryRunPorts(w io.Writer, configfsRoot string, real Mapper) Ports {
	d := &dry{w: w, iface: initiator.DefaultIface, configfsRoot: configfsRoot}
	return Ports{Initiator: d, Mapper: dryMapper{d, real}, Exporter: dryExporter{d}, Metadata: dryMeta{d},
		Hooks: dryHooks{d}, Inhibitor: NoInhibitor{}, Regulator: dryRegulator{}}
}

type dry struct {
	w            io.Writer
	iface        string
	configfsRoot string
}

func (d *dry) printf(format string, args ...any) {
	fmt.Fprintf(d.w, "[dry-run] "+format+"\n", args...)
}

func (d *dry) Login(ctx context.Context, t Target) error {
	auth := ""
	if t.CHAP != nil {
		auth = fmt.Sprintf(" (CHAP user %s, secret from %s, written to the node record file, never on argv)", t.CHAP.Username, t.CHAP.SecretFile)
	}
	d.printf("iscsiadm -m discovery -t sendtargets -p %s -o nonpersistent", t.Portal)
	d.printf("iscsiadm -m node -T %s -p %s -I %s -o new", t.IQN, t.Portal, d.iface)
	d.printf("iscsiadm -m node -T %s -p %s -I %s -o update -n node.session.auth.authmethod -v %s%s", t.IQN, t.Portal, d.iface,
		map[bool]string{true: "CHAP", false: "None"}[t.CHAP != nil], auth)
	d.printf("iscsiadm -m node -T %s -p %s -I %s --login", t.IQN, t.Portal, d.iface)
	return nil
}

func (d *dry) Logout(ctx context.Context, t Target) error {
	d.printf("iscsiadm -m node -T %s -p %s -I %s --logout", t.IQN, t.Portal, d.iface)
	d.printf("iscsiadm -m node -T %s -p %s -I %s -o delete", t.IQN, t.Portal, d.iface)
	return nil
}

func (d *dry) FindDisk(ctx context.Context, t Target, lun int) (Disk, error) {
	p := fmt.Sprintf("<disk of %s lun %d>", t, lun)
	d.printf("find %s in /sys/class/iscsi_session/*/device/target*/*:*:*:%d/block", p, lun)
	return Disk{Path: p}, nil
}

func (d *dry) SetReadOnly(ctx context.Context, disk string) error {
	d.printf("ioctl BLKROSET 1 on %s (blockdev --setro)", disk)
	return nil
}

// dryMapper prints changes; reads (lookup, status, list) go to real, when
// set and readable, so that a dry run of a later step sees the live device.
type dryMapper struct {
	d    *dry
	real Mapper
}

func (m dryMapper) Lookup(ctx context.Context, name string) (string, bool, error) {
	if m.real != nil {
		if dev, ok, err := m.real.Lookup(ctx, name); err == nil {
			return dev, ok, nil
		}
	}
	return "", false, nil
}

func (m dryMapper) CreateClone(ctx context.Context, name string, sectors uint64, c dm.Clone) (string, error) {
	m.d.printf("dm create %s uuid %s%s table: %s", name, "LUNFERRY-", name, CloneLine(sectors, c))
	return "/dev/<dm device " + name + ">", nil
}

func (m dryMapper) CreateLinear(ctx context.Context, name string, sectors uint64, dev string) (string, error) {
	m.d.printf("dm create %s table: %s", name, LinearLine(sectors, dev))
	return "/dev/<dm device " + name + ">", nil
}

func (m dryMapper) SwapLinear(ctx context.Context, name string, sectors uint64, dev string) (time.Duration, error) {
	m.d.printf("if %s is write-through: write \"temporary write back\" to its scsi_disk cache_type (the host keeps its FUA writes)", dev)
	m.d.printf("dm load %s (inactive) table: %s", name, LinearLine(sectors, dev))
	m.d.printf("dm suspend %s; dm resume %s", name, name)
	return 0, nil
}

func (m dryMapper) Remove(ctx context.Context, name string) error {
	m.d.printf("dm remove %s", name)
	return nil
}

func (m dryMapper) CloneStatus(ctx context.Context, name string) (dm.CloneStatus, error) {
	if m.real != nil {
		if st, err := m.real.CloneStatus(ctx, name); err == nil {
			return st, nil
		}
	}
	m.d.printf("dm status %s", name)
	return dm.CloneStatus{}, fmt.Errorf("plan: dry run: no live status of %s", name)
}

func (m dryMapper) Message(ctx context.Context, name, msg string) error {
	m.d.printf("dm message %s 0 %s", name, msg)
	return nil
}

func (m dryMapper) List(ctx context.Context) ([]string, error) {
	if m.real != nil {
		if l, err := m.real.List(ctx); err == nil {
			return l, nil
		}
	}
	return nil, nil
}

type dryExporter struct{ d *dry }

func (e dryExporter) Lookup(ctx context.Context, iqn string) (bool, error) { return false, nil }

func (e dryExporter) Apply(ctx context.Context, s ExportSpec) error {
	le, err := LIOExport(s)
	if err != nil {
		return err
	}
	rec := &lio.Recorder{DryRun: true, Log: func(op lio.Op) { e.d.printf("configfs: %s", op) }}
	all := lio.StaticAddrs{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	root := lio.NewRoot(lio.Options{ConfigFSRoot: e.d.configfsRoot, FS: rec, Addrs: all})
	err = root.Apply(ctx, le)
	if err == nil {
		return nil
	}
	e.d.printf("configfs not readable here (%v); the export as lio would create it:", err)
	so, _ := json.Marshal(le.StorageObject())
	tc, _ := json.Marshal(le.TargetConfig())
	e.d.printf("configfs: create %s storage object %s on %s: %s", lio.BackstoreBlock, s.StorageName, s.Device, so)
	e.d.printf("configfs: create target %s (tpg 1, lun 0, portals %s, acl %s only): %s", s.IQN,
		strings.Join(s.Portals, " "), s.HostIQN, tc)
	return nil
}

func (e dryExporter) Teardown(ctx context.Context, iqn, storageName string) error {
	e.d.printf("configfs: tear down target %s and storage object %s", iqn, storageName)
	return nil
}

func (e dryExporter) Sessions(ctx context.Context, iqn string) ([]string, error) { return nil, nil }

func (e dryExporter) List(ctx context.Context) ([]string, error) { return nil, nil }

type dryMeta struct{ d *dry }

func (m dryMeta) CreateFile(ctx context.Context, path string, size uint64, zero bool) (string, error) {
	m.d.printf("create sparse file %s of %d bytes (%s)", path, size, Bytes(size))
	if zero {
		m.d.printf("zero the first 4096 bytes of %s", path)
	}
	m.d.printf("attach %s to a free loop device (LOOP_CTL_GET_FREE, LOOP_CONFIGURE)", path)
	return "/dev/<loop of " + path + ">", nil
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

func (h dryHooks) Check(path string) error { return checkExecutable(path) }

type dryRegulator struct{}

func (dryRegulator) Regulate(string, dm.CloneStatus, time.Time, clone.Rate) []string { return nil }
func (dryRegulator) Wake(string) (time.Time, bool)                                   { return time.Time{}, false }
func (dryRegulator) Forget(string)                                                   {}
