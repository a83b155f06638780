package plan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/lio"
)

// KernelOptions configure the real ports.
type KernelOptions struct {
	// SysRoot is sysfs (empty: /sys).
	SysRoot string
	// DevRoot is the device directory (empty: /dev).
	DevRoot string
	// ConfigFSRoot is LIO's configfs directory (empty: lio's default,
	// /sys/kernel/config/target).
	ConfigFSRoot string
	// Iscsiadm is the iscsiadm program (empty: "iscsiadm" in PATH).
	Iscsiadm string
	// DiskTimeout bounds the wait for a LUN's disk after login (0: 30s).
	DiskTimeout time.Duration
	// TotalRate is the bandwidth budget shared by all hydrating volumes
	// (0: none, each volume's own throttle only).
	TotalRate clone.Rate
	// TickInterval is the period of the control loop the regulator is
	// tuned for (0: 2s).
	TickInterval time.Duration
}

// KernelPorts returns the ports over the real kernel: dm (ioctl),
// initiator (iscsiadm + sysfs), lio (configfs), loop devices, hooks as
// processes and logind's inhibitor. The device-mapper control node is
// opened at first use, so commands that never touch dm need no root.
func KernelPorts(o KernelOptions) Ports {
	ini, err := initiator.New(initiator.Options{Iscsiadm: o.Iscsiadm, SysRoot: o.SysRoot, DevRoot: o.DevRoot})
	var ip Initiator = &kernelInitiator{c: ini, sysRoot: o.SysRoot, timeout: o.DiskTimeout}
	if err != nil {
		ip = brokenInitiator{err}
	}
	return Ports{
		Initiator: ip,
		Mapper:    &kernelMapper{opts: dmOptions(o)},
		Exporter:  &kernelExporter{r: lio.NewRoot(lio.Options{ConfigFSRoot: o.ConfigFSRoot})},
		Metadata:  LoopMetadata{SysRoot: o.SysRoot, DevRoot: o.DevRoot},
		Hooks:     ExecHooks{},
		Inhibitor: LogindInhibitor{},
		Regulator: NewCloneRegulator(o.TotalRate, o.TickInterval),
	}
}

func dmOptions(o KernelOptions) dm.Options { return dm.Options{SysRoot: o.SysRoot, DevRoot: o.DevRoot} }

// kernelInitiator adapts initiator.Client.
type kernelInitiator struct {
	c       *initiator.Client
	sysRoot string
	timeout time.Duration
}

func node(t Target) (initiator.Node, error) {
	p, err := initiator.ParsePortal(t.Portal)
	if err != nil {
		return initiator.Node{}, err
	}
	return initiator.Node{TargetIQN: t.IQN, Portal: p}, nil
}

func (k *kernelInitiator) Login(ctx context.Context, t Target) error {
	n, err := node(t)
	if err != nil {
		return err
	}
	var chap *initiator.CHAP
	if t.CHAP != nil {
		chap, err = initiator.CHAPFiles{Username: t.CHAP.Username, SecretFile: t.CHAP.SecretFile,
			MutualUsername: t.CHAP.MutualUsername, MutualSecretFile: t.CHAP.MutualSecretFile}.Load(nil)
		if err != nil {
			return err
		}
	}
	err = k.c.Login(ctx, n, initiator.LoginOptions{CHAP: chap, DiscoveryCHAP: chap})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, initiator.ErrUnreachable):
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	case errors.Is(err, initiator.ErrAuthFailed), errors.Is(err, initiator.ErrLoginRefused):
		return fmt.Errorf("%w: %w", ErrLoginRefused, err)
	}
	return err
}

func (k *kernelInitiator) Logout(ctx context.Context, t Target) error {
	n, err := node(t)
	if err != nil {
		return err
	}
	return k.c.Logout(ctx, n)
}

func (k *kernelInitiator) FindDisk(ctx context.Context, t Target, lun int) (Disk, error) {
	n, err := node(t)
	if err != nil {
		return Disk{}, err
	}
	timeout := k.timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	d, err := k.c.FindDisk(ctx, n, uint64(lun), timeout)
	if err != nil {
		return Disk{}, err
	}
	sys := k.sysRoot
	if sys == "" {
		sys = "/sys"
	}
	// The LU's identity: the WWID (VPD page 0x83) or, for devices without
	// one, the unit serial number (VPD page 0x80: 4-byte header, then the
	// serial).
	id := ""
	dev := filepath.Join(sys, "block", d.Name, "device")
	if b, err := os.ReadFile(filepath.Join(dev, "wwid")); err == nil {
		id = strings.TrimSpace(string(b))
	} else if b, err := os.ReadFile(filepath.Join(dev, "vpd_pg80")); err == nil && len(b) > 4 {
		if serial := strings.Trim(string(b[4:]), " \x00\n"); serial != "" {
			id = "serial." + serial
		}
	}
	return Disk{Path: d.Path, SizeBytes: uint64(d.Size), ID: id}, nil
}

func (k *kernelInitiator) SetReadOnly(ctx context.Context, disk string) error {
	return k.c.SetReadOnly(disk)
}

// brokenInitiator reports why the initiator client could not be made.
type brokenInitiator struct{ err error }

func (b brokenInitiator) Login(context.Context, Target) error  { return b.err }
func (b brokenInitiator) Logout(context.Context, Target) error { return b.err }
func (b brokenInitiator) FindDisk(context.Context, Target, int) (Disk, error) {
	return Disk{}, b.err
}
func (b brokenInitiator) SetReadOnly(context.Context, string) error { return b.err }

// kernelMapper adapts dm.Client, opened at first use.
type kernelMapper struct {
	opts dm.Options
	once sync.Once
	c    *dm.Client
	err  error
}

func (m *kernelMapper) client() (*dm.Client, error) {
	m.once.Do(func() { m.c, m.err = dm.Open(m.opts) })
	return m.c, m.err
}

func (m *kernelMapper) devRoot() string {
	if m.opts.DevRoot == "" {
		return "/dev"
	}
	return m.opts.DevRoot
}

// node returns /dev/dm-N for a device (devtmpfs makes it; udev's
// /dev/mapper names are not relied upon).
func (m *kernelMapper) node(info dm.Info) string {
	return filepath.Join(m.devRoot(), fmt.Sprintf("dm-%d", info.Dev.Minor))
}

func (m *kernelMapper) Lookup(ctx context.Context, name string) (string, bool, error) {
	c, err := m.client()
	if err != nil {
		return "", false, err
	}
	info, err := c.Info(ctx, name)
	if errors.Is(err, dm.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return m.node(info), true, nil
}

func uuidFor(name string) string { return dm.UUIDPrefix + name }

func (m *kernelMapper) CreateClone(ctx context.Context, name string, sectors uint64, cl dm.Clone) (string, error) {
	c, err := m.client()
	if err != nil {
		return "", err
	}
	if dev, ok, err := m.Lookup(ctx, name); err != nil || ok {
		return dev, err
	}
	info, err := c.Create(ctx, name, uuidFor(name), dm.Table{CloneLine(sectors, cl)})
	if err != nil {
		return "", err
	}
	return m.node(info), nil
}

func (m *kernelMapper) CreateLinear(ctx context.Context, name string, sectors uint64, dev string) (string, error) {
	c, err := m.client()
	if err != nil {
		return "", err
	}
	if d, ok, err := m.Lookup(ctx, name); err != nil || ok {
		return d, err
	}
	if err := keepWriteBack(m.opts.SysRoot, dev); err != nil {
		return "", err
	}
	info, err := c.Create(ctx, name, uuidFor(name), dm.Table{LinearLine(sectors, dev)})
	if err != nil {
		return "", err
	}
	return m.node(info), nil
}

func (m *kernelMapper) SwapLinear(ctx context.Context, name string, sectors uint64, dev string) (time.Duration, error) {
	c, err := m.client()
	if err != nil {
		return 0, err
	}
	if err := keepWriteBack(m.opts.SysRoot, dev); err != nil {
		return 0, err
	}
	res, err := c.Replace(ctx, name, dm.Table{LinearLine(sectors, dev)}, dm.ReplaceOptions{})
	return res.Suspended, err
}

// keepWriteBack makes the proxy's view of dev (the new LUN's SCSI disk)
// report a volatile write cache when the array reports none, with the sd
// driver's "temporary write back" cache type (no MODE SELECT is sent to the
// array).
//
// Why: a clone device always advertises a write-back cache with FUA
// (dm-clone sets flush_supported), so the host that logged in during the
// clone phase cached WCE=1 and sends FUA writes and cache flushes. A linear
// table inherits its queue's write cache from the disk below; over a
// write-through disk the device would turn write-through under the host,
// and LIO's iblock backend, which checks the backing queue for every
// command, would reject the host's FUA writes ("Invalid field in CDB": the
// lab saw ext4 abort its journal). Claiming write back over a
// write-through array is safe: flushes and FUA become SYNCHRONIZE CACHE,
// which such an array completes at once.
func keepWriteBack(sysRoot, dev string) error {
	if sysRoot == "" {
		sysRoot = "/sys"
	}
	name := filepath.Base(dev)
	wcPath := filepath.Join(sysRoot, "block", name, "queue", "write_cache")
	wc, err := os.ReadFile(wcPath)
	if err != nil {
		return fmt.Errorf("plan: read %s: %w", wcPath, err)
	}
	if strings.TrimSpace(string(wc)) == "write back" {
		return nil
	}
	types, _ := filepath.Glob(filepath.Join(sysRoot, "block", name, "device", "scsi_disk", "*", "cache_type"))
	if len(types) != 1 {
		return fmt.Errorf("plan: %s reports a write-through cache and is not a SCSI disk whose cache type can be overridden: swapping to linear over it would make the host's FUA writes fail; not swapping", dev)
	}
	if err := os.WriteFile(types[0], []byte("temporary write back"), 0); err != nil {
		return fmt.Errorf("plan: set %s to temporary write back: %w (swapping to linear over a write-through disk would make the host's FUA writes fail; not swapping)", types[0], err)
	}
	wc, err = os.ReadFile(wcPath)
	if err != nil || strings.TrimSpace(string(wc)) != "write back" {
		return fmt.Errorf("plan: %s still reports %q after the cache type override; not swapping", dev, strings.TrimSpace(string(wc)))
	}
	return nil
}

func (m *kernelMapper) Remove(ctx context.Context, name string) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	err = c.Remove(ctx, name, dm.RemoveOptions{})
	if errors.Is(err, dm.ErrNotFound) {
		return nil
	}
	return err
}

func (m *kernelMapper) CloneStatus(ctx context.Context, name string) (dm.CloneStatus, error) {
	c, err := m.client()
	if err != nil {
		return dm.CloneStatus{}, err
	}
	return c.CloneStatus(ctx, name)
}

func (m *kernelMapper) Message(ctx context.Context, name, msg string) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	return c.Message(ctx, name, 0, msg)
}

func (m *kernelMapper) List(ctx context.Context) ([]string, error) {
	c, err := m.client()
	if err != nil {
		return nil, err
	}
	l, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range l {
		out = append(out, e.Name)
	}
	return out, nil
}

// kernelExporter adapts lio.Root.
type kernelExporter struct{ r *lio.Root }

func (e *kernelExporter) Lookup(ctx context.Context, iqn string) (bool, error) {
	return e.r.Target(iqn).Exists()
}

// LIOExport renders an ExportSpec as lio's desired state: an iblock storage
// object on the device, TPG 1, LUN 0, the portals, one ACL for the host.
func LIOExport(s ExportSpec) (lio.Export, error) {
	e := lio.Export{Name: s.StorageName, Backstore: lio.BackstoreBlock, Device: s.Device, TargetIQN: s.IQN, TPG: 1,
		LUN: 0, ACLs: []lio.ACL{{InitiatorIQN: s.HostIQN}}}
	for _, p := range s.Portals {
		ap, err := netip.ParseAddrPort(p)
		if err != nil {
			return lio.Export{}, fmt.Errorf("plan: export portal %q: want ip:port: %w", p, err)
		}
		e.Portals = append(e.Portals, lio.Portal{Addr: ap.Addr(), Port: ap.Port()})
	}
	return e, nil
}

func (e *kernelExporter) Apply(ctx context.Context, s ExportSpec) error {
	le, err := LIOExport(s)
	if err != nil {
		return err
	}
	return e.r.Apply(ctx, le)
}

func (e *kernelExporter) Teardown(ctx context.Context, iqn, storageName string) error {
	// Force: an abort removes the export under a logged-in host; the
	// post-abort hook moves the host back to the old array. StorageObjects:
	// a teardown interrupted after the target went is finished by a rerun.
	opts := lio.TeardownOptions{Force: true}
	if storageName != "" {
		opts.StorageObjects = []string{storageName}
	}
	return e.r.Teardown(ctx, iqn, opts)
}

func (e *kernelExporter) Sessions(ctx context.Context, iqn string) ([]string, error) {
	ss, err := e.r.Sessions(iqn)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range ss {
		if s.State == "" || s.State == "LOGGED_IN" || strings.Contains(s.State, "LOGGED_IN") {
			out = append(out, s.InitiatorIQN)
		}
	}
	return out, nil
}

func (e *kernelExporter) List(ctx context.Context) ([]string, error) {
	ts, err := e.r.Targets()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts {
		out = append(out, t.IQN)
	}
	return out, nil
}

// CloneRegulator adapts clone.Regulator (one clone.Controller per volume,
// optionally under a shared clone.Budget) to the Regulator port.
type CloneRegulator struct {
	r *clone.Regulator
}

// NewCloneRegulator returns a Regulator over clone's controller; total > 0
// shares that many bytes per second among all hydrating volumes.
func NewCloneRegulator(total clone.Rate, tick time.Duration) *CloneRegulator {
	if tick <= 0 {
		tick = 2 * time.Second
	}
	o := clone.RegulatorOptions{Controller: clone.Options{Interval: tick}}
	if total > 0 {
		o.Budget = clone.NewBudget(total)
	}
	return &CloneRegulator{r: clone.NewRegulator(o)}
}

// Regulate implements Regulator.
func (c *CloneRegulator) Regulate(volume string, s dm.CloneStatus, at time.Time, rate clone.Rate) []string {
	return c.r.Regulate(volume, s, at, rate)
}

// Wake implements Regulator.
func (c *CloneRegulator) Wake(volume string) (time.Time, bool) { return c.r.Wake(volume) }

// Forget implements Regulator.
func (c *CloneRegulator) Forget(volume string) { c.r.Forget(volume) }
