// Package plantest provides an in-memory kernel that implements every port
// of package plan, for unit tests of the state machine and the CLI. It
// records each call, can fail any operation on demand, kill the process at
// any call (CrashAt) and "reboot" (forget every kernel object, keep
// files), lists what it holds (Inventory) and records what must never
// happen (Writes, Violations).
package plantest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
)

// ErrCrash is returned by an operation armed with CrashAt: the test then
// treats the process as dead.
var ErrCrash = errors.New("plantest: simulated crash")

// ErrInjected is returned by the call FailAt names.
var ErrInjected = errors.New("plantest: injected failure")

// LUNInfo is a LUN the fake arrays offer.
type LUNInfo struct {
	// Size in bytes and ID (WWID) of the LUN's disk.
	Size uint64
	ID   string
	// BlockSize is the logical block size (0: 512).
	BlockSize uint32
	// Identity overrides the SCSI identity derived from ID (see
	// Kernel.Identity).
	Identity *scsi.Identity
	// Reservations are the persistent reservations on the LUN.
	Reservations scsi.Reservations
	// WriteThrough and NoFUA: the LUN reports no volatile write cache,
	// no FUA.
	WriteThrough, NoFUA bool
	// LBAStatus is what GET LBA STATUS reports (ThinDevices.LBAMap); nil
	// refuses it.
	LBAStatus []scsi.LBAExtent
	// NotZeroed: the LUN keeps data where it was discarded (an LBPRZ it
	// does not honour).
	NotZeroed bool
}

// Kernel is the fake. Zero value is not usable: use New.
type Kernel struct {
	mu sync.Mutex
	// LUNs maps "portal,iqn#lun" to the LUN behind it.
	LUNs map[string]LUNInfo
	// Unreachable portals fail Login with plan.ErrUnreachable.
	Unreachable map[string]bool
	// SessionDown portals have their sessions in recovery (FAILED), as
	// when the array became unreachable after login.
	SessionDown map[string]bool
	// RefuseLogin targets ("portal,iqn") fail Login with
	// plan.ErrLoginRefused.
	RefuseLogin map[string]bool
	// HostLogsIn makes the host's IQN appear in an export's sessions as
	// soon as the export exists (the post-cutover hook's job).
	HostLogsIn bool
	// IO holds each dm device's I/O counters (IOCounters); a device
	// without an entry has none yet.
	IO map[string]dm.IOCounters
	// MissingTargets are the device-mapper targets TargetAvailable
	// reports missing (every other is available).
	MissingTargets []string
	// Fail makes the named operation (e.g. "CreateClone") return the
	// error, every time.
	Fail map[string]error
	// CrashAt kills the process at its n-th call (1-based, counting all
	// operations): that call and every later one return ErrCrash, as
	// nothing a dead process asks reaches the kernel; 0 disables (the
	// next process). With CrashAfter the n-th call is made and only later
	// calls fail: the process died before it saw the result.
	CrashAt    int
	CrashAfter bool
	// OnCrash, if set, is called when the process dies, with what the
	// kernel holds then. It runs under the fake's lock: it must not call
	// the fake.
	OnCrash func(Inventory)
	// FailAt makes the n-th call alone fail with ErrInjected, without
	// effect; the process lives on. 0 disables.
	FailAt int
	// HydrationStep is how many regions each CloneStatus call hydrates
	// while hydration is enabled.
	HydrationStep uint64
	// LoseUncommitted makes Reboot keep only the hydration progress last
	// committed (CommitStatus), as a power loss does to dm-clone's
	// metadata; otherwise a reboot keeps all of it.
	LoseUncommitted bool
	// SwapStopsSuspended makes SwapLinear stop as a kill between its
	// suspend and its resume would: linear table loaded inactive, device
	// suspended, ErrCrash returned.
	SwapStopsSuspended bool
	// NoDiscardPassdown makes clone devices report no_discard_passdown
	// (the kernel turns it off when the destination takes no discard).
	NoDiscardPassdown bool
	// HookFail maps a hook path to the error its Run returns.
	HookFail map[string]error
	// HookMissing lists hook paths Check reports missing.
	HookMissing map[string]bool

	calls    []string
	sessions map[string]bool
	// timeouts are each session's, from its login.
	timeouts map[string]initiator.Timeouts
	disks    map[string]string // path -> lun key
	ro       map[string]bool
	dm       map[string]*Device
	exports  map[string]plan.ExportSpec
	loops    map[string]string // file -> loop dev
	nextDev  int
	meta     map[string]uint64 // hydration progress kept "in metadata"
	// committed is the progress last committed, per metadata file.
	committed map[string]uint64
	// writes lists per LUN key what wrote it; violations what audit
	// found.
	writes     map[string][]string
	violations []string
	// hostWrites are the metadata (files or devices) of clones that
	// were exported: they record where the host's writes are.
	hostWrites map[string]bool
	// Zeroed records metadata files and devices zeroed.
	Zeroed   []string
	Hooks    []HookCall
	Messages []string
	// NoPR lists the LUN keys whose array refuses persistent
	// reservations (Fence fails with plan.ErrFenceRefused).
	NoPR map[string]bool
	// NoPRIn lists the LUN keys whose array has no persistent
	// reservations at all: PERSISTENT RESERVE IN and OUT are refused
	// (ILLEGAL REQUEST).
	NoPRIn map[string]bool
	// Discards are the discards on clone devices, in order.
	Discards []DiscardCall
	// discarded are the regions discarded, per metadata file (the
	// clone's record of them).
	discarded map[string]map[uint64]bool
	// discardedCommitted is discarded as of the last commit.
	discardedCommitted map[string]map[uint64]bool
	// CopyBacks are rollback's copies to an old LUN, in order.
	CopyBacks []CopyBackCall
	// DuringCopyBack, when set, is called after each copy to an old LUN
	// with the number of copies so far, outside the fake's lock (the
	// host writing while rollback copies).
	DuringCopyBack func(n int)
	// eraHist is what each era metadata file records.
	eraHist map[string]*eraHistory
	// fences are the reservation keys holding a LUN (the array's own
	// state: a reboot of the proxy keeps them).
	fences map[string]uint64
}

// Device is a fake dm device.
type Device struct {
	Node  string
	Table string
	Clone *dm.Clone
	// Sectors is the device's length.
	Sectors  uint64
	Hydrated uint64
	Total    uint64
	Enabled  bool
	Failed   bool
	// Linear is the device a linear table maps.
	Linear string
	// Era is the table of an era device.
	Era *dm.Era
	// Suspended and Inactive: a suspended device and a loaded table not
	// yet live.
	Suspended bool
	Inactive  []dm.RawLine
	// loaded is the table a swap stopped inside loaded (Inactive as
	// lunferry gave it).
	loaded *dm.TableLine
}

// HookCall records a hook run.
type HookCall struct {
	Path string
	Env  []string
}

// New returns an empty fake kernel with hydration of 1 region per status.
func New() *Kernel {
	return &Kernel{
		LUNs: map[string]LUNInfo{}, Unreachable: map[string]bool{}, SessionDown: map[string]bool{}, RefuseLogin: map[string]bool{},
		Fail: map[string]error{}, HookFail: map[string]error{}, HookMissing: map[string]bool{}, HydrationStep: 1,
		sessions: map[string]bool{}, disks: map[string]string{}, ro: map[string]bool{},
		dm: map[string]*Device{}, exports: map[string]plan.ExportSpec{}, loops: map[string]string{},
		HostLogsIn: true,
	}
}

// Key renders the LUNs map key.
func Key(portal, iqn string, lun int) string { return fmt.Sprintf("%s,%s#%d", portal, iqn, lun) }

// Ports returns the fake as plan.Ports (with NoInhibitor and the simple
// regulator below).
func (k *Kernel) Ports() plan.Ports {
	return plan.Ports{Initiator: k, Mapper: k, Exporter: k.Exporter(), Metadata: k, Hooks: k, Fencer: k, Inhibitor: plan.NoInhibitor{}, Regulator: &Regulator{},
		Era: k.Eras(), OldWriter: k, Thin: k}
}

func (k *Kernel) op(name string, args ...any) error {
	k.calls = append(k.calls, strings.TrimSpace(name+" "+fmt.Sprint(args...)))
	k.audit()
	if err := k.crash(); err != nil {
		return err
	}
	if k.FailAt > 0 && len(k.calls) == k.FailAt {
		return ErrInjected
	}
	if err := k.Fail[name]; err != nil {
		return err
	}
	return nil
}

// Calls returns the operations made so far.
func (k *Kernel) Calls() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.calls)
}

// ResetCalls forgets the recorded calls (CrashAt counts from there).
func (k *Kernel) ResetCalls() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = nil
}

// Reboot forgets every kernel object; files (metadata) remain. Hydration
// progress is kept in Progress, keyed by device name, as metadata would.
func (k *Kernel) Reboot() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, d := range k.dm {
		if d.Clone != nil {
			f := k.metaFile(d.Clone.Metadata)
			k.progress()[f] = d.Hydrated
			if k.LoseUncommitted {
				k.progress()[f] = k.committed[f]
				if k.discarded != nil {
					k.discarded[f] = maps.Clone(k.discardedCommitted[f])
				}
			}
		}
	}
	k.sessions = map[string]bool{}
	k.disks = map[string]string{}
	k.ro = map[string]bool{}
	k.dm = map[string]*Device{}
	k.exports = map[string]plan.ExportSpec{}
	k.loops = map[string]string{}
}

func (k *Kernel) progress() map[string]uint64 {
	if k.meta == nil {
		k.meta = map[string]uint64{}
	}
	return k.meta
}

// metaFile returns the file behind a loop device (or the device itself).
func (k *Kernel) metaFile(dev string) string {
	for f, d := range k.loops {
		if d == dev {
			return f
		}
	}
	return dev
}

// Login implements plan.Initiator.
func (k *Kernel) Login(ctx context.Context, t plan.Target) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Login", t.String()); err != nil {
		return err
	}
	if k.Unreachable[t.Portal] {
		return fmt.Errorf("iscsiadm: cannot connect to %s: %w", t.Portal, plan.ErrUnreachable)
	}
	if k.RefuseLogin[t.String()] {
		return fmt.Errorf("iscsiadm: login to %s: authorization failure: %w", t, plan.ErrLoginRefused)
	}
	if !k.sessions[t.String()] {
		if k.timeouts == nil {
			k.timeouts = map[string]initiator.Timeouts{}
		}
		k.timeouts[t.String()] = t.Timeouts.WithDefaults()
	}
	k.sessions[t.String()] = true
	return nil
}

// Logout implements plan.Initiator.
func (k *Kernel) Logout(ctx context.Context, t plan.Target) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Logout", t.String()); err != nil {
		return err
	}
	delete(k.sessions, t.String())
	for p, key := range k.disks {
		if strings.HasPrefix(key, t.String()+"#") {
			delete(k.disks, p)
			delete(k.ro, p)
		}
	}
	return nil
}

// Session reports whether a session to "portal,iqn" exists.
func (k *Kernel) Session(t string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sessions[t]
}

// FindDisk implements plan.Initiator.
func (k *Kernel) FindDisk(ctx context.Context, t plan.Target, lun int) (plan.Disk, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("FindDisk", t.String(), lun); err != nil {
		return plan.Disk{}, err
	}
	if !k.sessions[t.String()] {
		return plan.Disk{}, fmt.Errorf("no session to %s", t)
	}
	key := Key(t.Portal, t.IQN, lun)
	info, ok := k.LUNs[key]
	if !ok {
		return plan.Disk{}, fmt.Errorf("no LUN %d behind %s", lun, t)
	}
	for p, kk := range k.disks {
		if kk == key {
			return info.disk(p), nil
		}
	}
	k.nextDev++
	p := fmt.Sprintf("/dev/sd%c", 'a'+k.nextDev)
	k.disks[p] = key
	return info.disk(p), nil
}

// SetReadOnly implements plan.Initiator.
func (k *Kernel) SetReadOnly(ctx context.Context, disk string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("SetReadOnly", disk); err != nil {
		return err
	}
	k.ro[disk] = true
	return nil
}

// ReadOnly reports whether the disk holding LUN key is read-only.
func (k *Kernel) ReadOnly(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for p, kk := range k.disks {
		if kk == key {
			return k.ro[p]
		}
	}
	return false
}

// DiskKey returns the LUN key of a disk path.
func (k *Kernel) DiskKey(path string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.disks[path]
}

// Lookup implements plan.Mapper.
func (k *Kernel) Lookup(ctx context.Context, name string) (string, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Lookup", name); err != nil {
		return "", false, err
	}
	d, ok := k.dm[name]
	if !ok {
		return "", false, nil
	}
	return d.Node, true, nil
}

// AddDevice puts a dm device into the kernel behind lunferry's back.
func (k *Kernel) AddDevice(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nextDev++
	k.dm[name] = &Device{Node: fmt.Sprintf("/dev/dm-%d", k.nextDev), Table: "0 8 zero"}
}

// AddExport puts a LIO target into the kernel behind lunferry's back.
func (k *Kernel) AddExport(iqn string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.exports[iqn] = plan.ExportSpec{IQN: iqn}
}

// SentMessages returns a copy of Messages, safe while the planner runs.
func (k *Kernel) SentMessages() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.Messages...)
}

// Device returns a copy of a dm device, nil if absent.
func (k *Kernel) Device(name string) *Device {
	k.mu.Lock()
	defer k.mu.Unlock()
	d, ok := k.dm[name]
	if !ok {
		return nil
	}
	c := *d
	return &c
}

// CreateClone implements plan.Mapper.
func (k *Kernel) CreateClone(ctx context.Context, name string, sectors uint64, t dm.Clone) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	line := plan.CloneLine(sectors, t).String()
	if err := k.op("CreateClone", name, line); err != nil {
		return "", err
	}
	if d, ok := k.dm[name]; ok {
		return d.Node, nil
	}
	for _, dev := range []string{t.Destination, t.Source} {
		if _, ok := k.disks[dev]; !ok {
			return "", fmt.Errorf("device %s does not exist", dev)
		}
	}
	if !k.ro[t.Source] {
		k.violate(fmt.Sprintf("clone %s created over %s, which is writable", name, t.Source))
	}
	region := uint64(t.RegionSize)
	if sectors == 0 || region == 0 {
		return "", fmt.Errorf("bad table %q", line)
	}
	k.nextDev++
	c := t
	total := (sectors + region - 1) / region
	d := &Device{Node: fmt.Sprintf("/dev/dm-%d", k.nextDev), Table: line, Clone: &c, Sectors: sectors, Total: total, Enabled: !t.NoHydration}
	if err := k.format(t, sectors); err != nil {
		return "", err
	}
	d.Hydrated = k.progress()[k.metaFile(t.Metadata)]
	k.dm[name] = d
	k.wrote(t.Destination, "clone destination of "+name)
	return d.Node, nil
}

// CreateLinear implements plan.Mapper.
func (k *Kernel) CreateLinear(ctx context.Context, name string, sectors uint64, dev string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("CreateLinear", name, plan.LinearLine(sectors, dev).String()); err != nil {
		return "", err
	}
	if d, ok := k.dm[name]; ok {
		return d.Node, nil
	}
	k.nextDev++
	d := &Device{Node: fmt.Sprintf("/dev/dm-%d", k.nextDev), Table: plan.LinearLine(sectors, dev).String(), Sectors: sectors, Linear: dev}
	k.dm[name] = d
	k.wrote(dev, "linear "+name)
	return d.Node, nil
}

// Swap implements plan.Mapper: a table of linear (finalize) or clone (the
// online takeover) replaces the live one.
func (k *Kernel) Swap(ctx context.Context, name string, line dm.TableLine) (time.Duration, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Swap", name, line.String()); err != nil {
		return 0, err
	}
	d, ok := k.dm[name]
	if !ok {
		return 0, fmt.Errorf("no device %s", name)
	}
	sectors := uint64(line.Length)
	if d.Sectors != 0 && d.Sectors != sectors {
		return 0, fmt.Errorf("size change %d -> %d", d.Sectors, sectors)
	}
	k.suspended(d)
	if k.SwapStopsSuspended {
		d.Suspended, d.Inactive, d.loaded = true, []dm.RawLine{rawOf(line)}, &line
		return 0, ErrCrash
	}
	return time.Millisecond, k.load(name, d, line)
}

// load makes line d's live table.
func (k *Kernel) load(name string, d *Device, line dm.TableLine) error {
	switch t := line.Target.(type) {
	case dm.Linear:
		d.Table, d.Clone, d.Linear = line.String(), nil, t.Device
		k.wrote(t.Device, "linear "+name)
	case dm.Clone:
		return k.swapToClone(name, d, t, uint64(line.Length))
	default:
		return fmt.Errorf("fake: no swap to %s", line.Target.Type())
	}
	return nil
}

// Remove implements plan.Mapper.
func (k *Kernel) Remove(ctx context.Context, name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Remove", name); err != nil {
		return err
	}
	d, ok := k.dm[name]
	if ok {
		for _, e := range k.exports {
			if e.Device == d.Node {
				return fmt.Errorf("device %s busy (exported)", name)
			}
		}
		if user := k.holder(d.Node); user != "" {
			return fmt.Errorf("device %s busy (%s is over it)", name, user)
		}
		k.suspended(d)
	}
	delete(k.dm, name)
	return nil
}

// CloneStatus implements plan.Mapper; each call while hydration is
// enabled hydrates HydrationStep more regions.
func (k *Kernel) CloneStatus(ctx context.Context, name string) (dm.CloneStatus, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("CloneStatus", name); err != nil {
		return dm.CloneStatus{}, err
	}
	d, ok := k.dm[name]
	if !ok || d.Clone == nil {
		return dm.CloneStatus{}, fmt.Errorf("no clone device %s", name)
	}
	if d.Failed {
		return dm.CloneStatus{Failed: true, MetadataMode: "Fail"}, nil
	}
	if d.Enabled {
		d.Hydrated = min(d.Total, d.Hydrated+k.HydrationStep)
	}
	st := dm.CloneStatus{HydratedRegions: d.Hydrated, TotalRegions: d.Total, RegionSize: d.Clone.RegionSize, MetadataMode: "rw"}
	if !d.Enabled {
		st.Features = []string{dm.CloneFeatureNoHydration}
	}
	if k.NoDiscardPassdown || d.Clone.NoDiscardPassdown {
		st.Features = append(st.Features, dm.CloneFeatureNoDiscardPassdown)
	}
	return st, nil
}

// SetHydrated sets a clone's progress.
func (k *Kernel) SetHydrated(name string, n uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dm[name].Hydrated = n
}

// Message implements plan.Mapper.
func (k *Kernel) Message(ctx context.Context, name, msg string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Message", name, msg); err != nil {
		return err
	}
	d, ok := k.dm[name]
	if !ok {
		return fmt.Errorf("no device %s", name)
	}
	k.Messages = append(k.Messages, name+" "+msg)
	switch msg {
	case dm.MsgEnableHydration:
		d.Enabled = true
	case dm.MsgDisableHydration:
		d.Enabled = false
	}
	return nil
}

// List implements plan.Mapper.
func (k *Kernel) List(ctx context.Context) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for n := range k.dm {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// exporter is the Exporter view (Lookup and List clash with Mapper's).
type exporter struct{ k *Kernel }

// Exporter returns the fake's plan.Exporter.
func (k *Kernel) Exporter() plan.Exporter { return exporter{k} }

func (e exporter) Lookup(ctx context.Context, iqn string) (bool, error) {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("ExportLookup", iqn); err != nil {
		return false, err
	}
	_, ok := k.exports[iqn]
	return ok, nil
}

func (e exporter) Serving(ctx context.Context, iqn, storageName, device, hostIQN string) (bool, error) {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("ExportServing", iqn); err != nil {
		return false, err
	}
	s, ok := k.exports[iqn]
	return ok && s.Device != "" && s.Device == device && s.StorageName == storageName && s.HostIQN == hostIQN, nil
}

// StripExport leaves target iqn without its LUN, as a LIO restore that
// found no device for the storage object does.
func (k *Kernel) StripExport(iqn string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.exports[iqn]
	s.Device, s.StorageName = "", ""
	k.exports[iqn] = s
}

// RepointExport leaves target iqn's storage object on device dev, as a
// LIO restore of a configuration saved when lunferry's device had dev's
// number does.
func (k *Kernel) RepointExport(iqn, dev string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.exports[iqn]
	s.Device = dev
	k.exports[iqn] = s
}

func (e exporter) Apply(ctx context.Context, s plan.ExportSpec) error {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Apply", s.IQN, s.Device); err != nil {
		return err
	}
	found := false
	for _, d := range k.dm {
		found = found || d.Node == s.Device
	}
	if !found {
		return fmt.Errorf("iblock %s: no such device", s.Device)
	}
	k.exports[s.IQN] = s
	k.servedFrom(s.Device)
	return nil
}

func (e exporter) Teardown(ctx context.Context, iqn, storage string) error {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Teardown", iqn); err != nil {
		return err
	}
	delete(k.exports, iqn)
	return nil
}

func (e exporter) Sessions(ctx context.Context, iqn string) ([]string, error) {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Sessions", iqn); err != nil {
		return nil, err
	}
	s, ok := k.exports[iqn]
	if !ok || !k.HostLogsIn || s.HostIQN == "" {
		return nil, nil
	}
	return []string{s.HostIQN}, nil
}

func (e exporter) List(ctx context.Context) ([]string, error) {
	k := e.k
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for n := range k.exports {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Export returns an export, false if absent.
func (k *Kernel) Export(iqn string) (plan.ExportSpec, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.exports[iqn]
	return e, ok
}

// CreateFile implements plan.MetadataDevices: it really creates the file
// (so state-dir tests see it) and a fake loop device.
func (k *Kernel) CreateFile(ctx context.Context, path string, size uint64) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("CreateFile", path, size); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	k.clearsHostWrites(path)
	if err := f.Truncate(int64(size)); err != nil {
		return "", err
	}
	if _, err := f.WriteAt(make([]byte, dm.CloneSuperblockSize), 0); err != nil {
		return "", err
	}
	k.Zeroed = append(k.Zeroed, path)
	delete(k.progress(), path)
	delete(k.committed, path)
	return k.attach(path), nil
}

// DetachFile implements plan.MetadataDevices.
func (k *Kernel) DetachFile(ctx context.Context, path string, remove bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("DetachFile", path, remove); err != nil {
		return err
	}
	delete(k.loops, path)
	if remove {
		delete(k.hostWrites, path)
		delete(k.eraHist, path)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Loop reports the loop device of a file.
func (k *Kernel) Loop(path string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	d, ok := k.loops[path]
	return d, ok
}

// ZeroDevice implements plan.MetadataDevices.
func (k *Kernel) ZeroDevice(ctx context.Context, dev string, minSize uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("ZeroDevice", dev); err != nil {
		return err
	}
	k.wrote(dev, "zeroed")
	k.clearsHostWrites(dev)
	delete(k.eraHist, dev)
	k.Zeroed = append(k.Zeroed, dev)
	return nil
}

// Run implements plan.HookRunner.
func (k *Kernel) Run(ctx context.Context, path string, env []string, timeout time.Duration, logPath string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Hook", path); err != nil {
		return err
	}
	k.Hooks = append(k.Hooks, HookCall{Path: path, Env: env})
	return k.HookFail[path]
}

// Check implements plan.HookRunner: hooks in HookMissing are missing.
func (k *Kernel) Check(path string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.HookMissing[path] {
		return fmt.Errorf("stat %s: no such file or directory", path)
	}
	return nil
}

// Regulator is a trivial plan.Regulator: clone.Unlimited → threshold 64,
// else threshold 1; it records what it was asked. With WakeAfter set, it
// asks for the next sample of every volume it regulates that long after
// each Regulate, like clone.Regulator ending a burst of hydration.
type Regulator struct {
	// WakeAfter is the wake-up Wake reports after each Regulate (0: none).
	WakeAfter time.Duration

	mu sync.Mutex
	// Seen counts Regulate calls per volume.
	Seen map[string]int
	// Forgotten counts Forget calls per volume.
	Forgotten map[string]int
	// Rates records the rate of each Regulate call per volume.
	Rates map[string][]clone.Rate
	// YieldRate is what Yield returns (at most its ceiling); 0: the
	// ceiling.
	YieldRate clone.Rate
	// Yields records each Yield call's counters per volume.
	Yields map[string][]dm.IOCounters
	wake   map[string]time.Time
}

// Regulate implements plan.Regulator.
func (r *Regulator) Regulate(volume string, s dm.CloneStatus, at time.Time, rate clone.Rate) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Seen == nil {
		r.Seen = map[string]int{}
	}
	r.Seen[volume]++
	if r.Rates == nil {
		r.Rates = map[string][]clone.Rate{}
	}
	r.Rates[volume] = append(r.Rates[volume], rate)
	if r.WakeAfter > 0 {
		if r.wake == nil {
			r.wake = map[string]time.Time{}
		}
		r.wake[volume] = at.Add(r.WakeAfter)
	}
	var msgs []string
	if !s.HydrationEnabled() {
		msgs = append(msgs, dm.MsgEnableHydration)
	}
	if rate == clone.Unlimited {
		return append(msgs, "hydration_threshold 64")
	}
	return append(msgs, "hydration_threshold 1")
}

// Wake implements plan.Regulator.
func (r *Regulator) Wake(volume string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.wake[volume]
	return at, ok
}

// Yield implements plan.Regulator.
func (r *Regulator) Yield(volume string, io dm.IOCounters, _ uint64, _ time.Time, ceiling clone.Rate, _ float64) clone.Rate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Yields == nil {
		r.Yields = map[string][]dm.IOCounters{}
	}
	r.Yields[volume] = append(r.Yields[volume], io)
	if r.YieldRate == 0 {
		return ceiling
	}
	return min(r.YieldRate, ceiling)
}

// Forget implements plan.Regulator.
func (r *Regulator) Forget(volume string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Forgotten == nil {
		r.Forgotten = map[string]int{}
	}
	r.Forgotten[volume]++
	delete(r.wake, volume)
}

// Forgets returns how many times Forget was called for volume.
func (r *Regulator) Forgets(volume string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Forgotten[volume]
}

// Calls returns how many times Regulate was called for volume.
func (r *Regulator) Calls(volume string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Seen[volume]
}

// SetFailed makes a clone report "Fail".
func (k *Kernel) SetFailed(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dm[name].Failed = true
}
