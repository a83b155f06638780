package plan

import (
	"context"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/lio"
)

// The ports: small interfaces over the kernel and the outside world that the
// state machine drives. Package plan/kernel adapts them to the dm, lio,
// initiator and clone packages and prints what they would do in a dry run;
// tests use fakes (plantest).
//
// Every method is idempotent: creating what exists (with the same
// configuration) succeeds, removing what is gone succeeds.

// Target is an iSCSI target the proxy logs in to.
type Target struct {
	// Portal is "host:port".
	Portal string
	// IQN is the target name.
	IQN string
	// CHAP holds the session credentials' file paths, nil without CHAP.
	CHAP *CHAP
	// DiscoveryCHAP holds the SendTargets discovery credentials' file
	// paths, nil for a discovery without CHAP.
	DiscoveryCHAP *CHAP
	// Timeouts are written to the node record before login (defaults
	// filled in); an existing session keeps its own.
	Timeouts initiator.Timeouts
}

// String renders "portal,iqn", the form iscsiadm prints.
func (t Target) String() string { return t.Portal + "," + t.IQN }

func targetOf(l LUN) Target {
	return Target{Portal: l.Portal, IQN: l.IQN, CHAP: l.CHAP, DiscoveryCHAP: l.DiscoveryCHAP, Timeouts: l.SessionTimeouts.Initiator()}
}

// Initiator attaches array LUNs to the proxy (open-iscsi).
type Initiator interface {
	// Login discovers the target at its portal and logs in, or finds the
	// session already there. Errors wrap ErrUnreachable when the portal
	// cannot be reached and ErrLoginRefused when the target refuses.
	Login(ctx context.Context, t Target) error
	// Logout ends the session to t, if any.
	Logout(ctx context.Context, t Target) error
	// FindDisk waits (briefly) for the block device of LUN lun behind t's
	// session and returns it.
	FindDisk(ctx context.Context, t Target, lun int) (Disk, error)
	// SetReadOnly makes the block device refuse writes (BLKROSET).
	SetReadOnly(ctx context.Context, disk string) error
	// HasSession reports whether the proxy has a session to t.
	HasSession(ctx context.Context, t Target) (bool, error)
	// SessionState returns the proxy's session to t as the kernel shows
	// it now: its state (initiator.SessionLoggedIn, or "FAILED" while
	// iscsid recovers a lost connection and I/O waits) and the timeouts
	// in force; ok is false when there is none.
	SessionState(ctx context.Context, t Target) (s initiator.Session, ok bool, err error)
	// Identity reads the SCSI identity of a LUN's disk (INQUIRY, VPD
	// pages, READ CAPACITY(16)) over SG_IO.
	Identity(ctx context.Context, disk string) (scsi.Identity, error)
	// Reservations reads the persistent reservations on a LUN's disk.
	Reservations(ctx context.Context, disk string) (scsi.Reservations, error)
}

// CloneLine is the one-line table of a clone device of sectors sectors:
//
//	0 <sectors> clone <metadata> <dest> <source> <region> [<#features> <feature>*]
func CloneLine(sectors uint64, c dm.Clone) dm.TableLine {
	return dm.TableLine{Length: dm.Sectors(sectors), Target: c}
}

// LinearLine is "0 <sectors> linear <dev> 0": the whole of dev from its
// first sector.
func LinearLine(sectors uint64, dev string) dm.TableLine {
	return dm.TableLine{Length: dm.Sectors(sectors), Target: dm.Linear{Device: dev}}
}

// Mapper drives device-mapper.
type Mapper interface {
	// Lookup reports whether a dm device name exists and its node
	// (/dev/dm-N; lunferry never relies on udev's /dev/mapper).
	Lookup(ctx context.Context, name string) (dev string, ok bool, err error)
	// CreateClone creates name as c over sectors sectors and returns its
	// node.
	CreateClone(ctx context.Context, name string, sectors uint64, c dm.Clone) (string, error)
	// CreateLinear creates name as linear over dev (restore after
	// finalize) and returns its node.
	CreateLinear(ctx context.Context, name string, sectors uint64, dev string) (string, error)
	// Swap replaces name's table live (suspend, load, resume) with line
	// (LinearLine at finalize, CloneLine at an online cutover's
	// takeover); the device stays open and its size does not change. It
	// returns how long I/O was held.
	Swap(ctx context.Context, name string, line dm.TableLine) (time.Duration, error)
	// Suspend suspends name, waiting for its in-flight I/O to complete
	// (flush): new I/O waits until Resume.
	Suspend(ctx context.Context, name string) error
	// Load loads line into name's inactive slot; Resume makes it live.
	// A linear table keeps the host's write-back cache as Swap does.
	Load(ctx context.Context, name string, line dm.TableLine) error
	// ClearInactive drops the table loaded into name's inactive slot, if
	// any.
	ClearInactive(ctx context.Context, name string) error
	// Remove removes name; missing is not an error.
	Remove(ctx context.Context, name string) error
	// CloneStatus reads name's clone status, cheaply: without a metadata
	// commit (what it reports may not survive a power loss).
	CloneStatus(ctx context.Context, name string) (dm.CloneStatus, error)
	// CommitStatus reads name's clone status after committing its
	// metadata (a status without DM_NOFLUSH): what it reports survives a
	// power loss.
	CommitStatus(ctx context.Context, name string) (dm.CloneStatus, error)
	// Inspect reads what the kernel holds for name: suspended or not, the
	// live table and a loaded inactive one. ok is false when name does not
	// exist.
	Inspect(ctx context.Context, name string) (d DeviceState, ok bool, err error)
	// Resume resumes a suspended device; a loaded inactive table becomes
	// the live one.
	Resume(ctx context.Context, name string) error
	// Message sends a target message ("enable_hydration", ...) to name.
	Message(ctx context.Context, name, msg string) error
	// TargetAvailable reports whether device-mapper can build tables of
	// target type name ("clone", "era"): loaded, or a module of the
	// running kernel that loading such a table brings in.
	TargetAvailable(ctx context.Context, name string) (bool, error)
	// IOCounters reads name's completed I/O (sysfs stat): under the
	// export, the host's requests and the time they took.
	IOCounters(ctx context.Context, name string) (dm.IOCounters, error)
	// List returns the names of all dm devices (to find strays with
	// lunferry's prefix).
	List(ctx context.Context) ([]string, error)
}

// ExportSpec is the LIO export of one volume.
type ExportSpec struct {
	// IQN is the target name; the TPG is 1.
	IQN string
	// Portals are "ip:port" addresses.
	Portals []string
	// StorageName names the iblock storage object ("lunferry-<volume>").
	StorageName string
	// Device is the block device exported as LUN 0.
	Device string
	// HostIQN is the only initiator admitted.
	HostIQN string
	// CHAP holds the file paths of the credentials the host presents
	// (and, mutual, the proxy presents to it); nil without CHAP.
	CHAP *CHAP
	// WWN is the SCSI identity the export shows (the old LUN's, or one
	// derived once); zero keeps LIO's own.
	WWN lio.WWN
	// BlockSize is the logical block size the export shows (the old
	// LUN's); 0 keeps the device's.
	BlockSize uint32
	// NoFUA: the export does not offer FUA (emulate_fua_write 0), as the
	// old LUN of an online cutover does not: a host's multipath map takes
	// FUA from any of its paths and would send FUA writes down the direct
	// one too.
	NoFUA bool
	// EmulateTPU and EmulateTPWS show a thin provisioned LUN that takes
	// UNMAP and WRITE SAME with UNMAP (the old LUN's, when the new LUN is
	// thin too: scsi.Export.OverNewLUN).
	EmulateTPU, EmulateTPWS bool
}

// Exporter drives the LIO target.
type Exporter interface {
	// Lookup reports whether a target iqn exists.
	Lookup(ctx context.Context, iqn string) (bool, error)
	// Serving reports whether target iqn serves storage object
	// storageName, holding device, to hostIQN: its TPG 1 enabled, a LUN
	// over the storage object, the host's ACL mapping that LUN. A target
	// without them (a LUN removed by hand, or left out by a LIO restore
	// that found no device) exists but shows the host no disk; one whose
	// storage object holds another device (a LIO restore of a saved
	// configuration after the device's number changed) shows the wrong
	// disk.
	Serving(ctx context.Context, iqn, storageName, device, hostIQN string) (bool, error)
	// Apply creates the export or completes a partial one.
	Apply(ctx context.Context, e ExportSpec) error
	// Teardown removes the target and its storage object.
	Teardown(ctx context.Context, iqn, storageName string) error
	// Sessions returns the initiator names logged in to iqn.
	Sessions(ctx context.Context, iqn string) ([]string, error)
	// List returns the IQNs of all targets (to find strays).
	List(ctx context.Context) ([]string, error)
}

// DeviceState is what the kernel holds for a dm device.
type DeviceState struct {
	// Node is the device node (/dev/dm-N).
	Node string
	// Suspended: the device holds I/O until it is resumed.
	Suspended bool
	// Active is the live table; Inactive a table loaded but not yet
	// live (nil when none). Devices appear as "major:minor".
	Active, Inactive []dm.RawLine
}

// MetadataDevices makes and frees dm-clone metadata devices.
type MetadataDevices interface {
	// CreateFile creates fresh metadata: a file of size bytes, all
	// allocated, at path (or the existing one), its first 4 KiB cleared, on a loop
	// device, which it returns. Only prepare creates metadata.
	CreateFile(ctx context.Context, path string, size uint64) (string, error)
	// AttachFile puts the existing metadata file path back on a loop
	// device (or finds it attached) and returns the device. It never
	// creates, extends or clears the file: one that is missing or shorter
	// than size bytes is an error wrapping ErrMetadataLost.
	AttachFile(ctx context.Context, path string, size uint64) (string, error)
	// Attached returns the loop device path is attached to, if any.
	Attached(ctx context.Context, path string) (dev string, ok bool, err error)
	// Superblock reads the dm-clone superblock of the metadata device dev
	// (an error wrapping dm.ErrNoCloneSuperblock when its first block is
	// zeroes, dm.ErrBadCloneSuperblock when it is something else).
	Superblock(ctx context.Context, dev string) (dm.CloneSuperblock, error)
	// DetachFile detaches the loop device backing path, if any, and
	// deletes the file when remove is set.
	DetachFile(ctx context.Context, path string, remove bool) error
	// ZeroDevice checks that a given device holds at least minSize bytes
	// and clears its first 4 KiB.
	ZeroDevice(ctx context.Context, dev string, minSize uint64) error
}

// Fencer controls who writes the old LUN: the proxy's own disk flag, and
// a SCSI-3 persistent reservation on the array that keeps every other
// initiator (a host's direct path the hooks missed) from writing it.
type Fencer interface {
	// SetReadWrite clears the read-only flag of the proxy's disk (the
	// online cutover's pass-through: the host's writes go through it).
	SetReadWrite(ctx context.Context, disk string) error
	// Fence registers key through the proxy's session on the LUN of disk
	// and reserves it Write Exclusive - Registrants Only (taking over a
	// reservation its own key holds through an earlier session). An
	// array that does not implement persistent reservations is an error
	// wrapping ErrFenceRefused.
	Fence(ctx context.Context, disk string, key uint64) error
	// Unfence releases the reservation key holds and unregisters key.
	Unfence(ctx context.Context, disk string, key uint64) error
}

// HookRunner runs one hook executable.
type HookRunner interface {
	// Run runs path with env added to the minimal environment of
	// HookEnviron, bounded by timeout, its output appended to logPath.
	// A non-zero exit, a timeout or a failure to start is an error
	// wrapping ErrHook.
	Run(ctx context.Context, path string, env []string, timeout time.Duration, logPath string) error
	// Check reports a hook that could not be run (missing, not
	// executable) or that another user could replace (not owned by root,
	// writable by group or others), so that prepare and cutover find it
	// before the window.
	Check(path string) error
}

// Inhibitor holds off shutdown while a host-facing step is in flight.
type Inhibitor interface {
	// Inhibit takes an inhibitor lock; release drops it. Failure to
	// inhibit is not fatal to the caller.
	Inhibit(why string) (release func(), err error)
}

// NoInhibitor inhibits nothing.
type NoInhibitor struct{}

// Inhibit implements Inhibitor.
func (NoInhibitor) Inhibit(string) (func(), error) { return func() {}, nil }

// Regulator turns measured hydration progress into dm-clone settings that
// reach a target rate (dm-clone has no rate limit of its own).
type Regulator interface {
	// Regulate is called at each tick for every hydrating, unpaused volume
	// with its status and target rate (clone.Paused: hydration held,
	// clone.Unlimited: no throttle), and returns the messages to send
	// ("hydration_threshold 64", "disable_hydration", ...). Samples of one
	// volume come in time order.
	Regulate(volume string, s dm.CloneStatus, at time.Time, rate clone.Rate) []string
	// Wake returns when the regulator wants the next sample of volume
	// (false: no wish, or volume unknown). On a device much faster than
	// the throttle, hydration runs in bursts of 10-100 ms; Run reads the
	// status and calls Regulate again at that time, between its ticks,
	// to end them.
	Wake(volume string) (at time.Time, ok bool)
	// Yield returns the rate at which volume's hydration yields to its
	// host, for a throttle with the adaptive clause (factor its
	// Adaptive): at most ceiling, lower while the host's I/O latency is
	// above factor times its idle baseline. io are the counters of the
	// device the host is served from and hydrated the volume's hydrated
	// bytes, read at at. Its result is Regulate's rate.
	Yield(volume string, io dm.IOCounters, hydrated uint64, at time.Time, ceiling clone.Rate, factor float64) clone.Rate
	// Forget drops a volume's history (paused, finished, aborted).
	Forget(volume string)
}

// Scanner names what stalls a hydration: the ranges of the old LUN that
// cannot be read (dm-clone retries them forever, without saying which).
type Scanner interface {
	// Unreadable reads from the old disk old, never writing, the regions
	// the clone's metadata device meta records unhydrated at or after
	// byte from, and returns what could not be read (clone.Scan, bounded
	// by o).
	Unreadable(ctx context.Context, old, meta string, from uint64, o clone.ScanOptions) (clone.ScanResult, error)
}

// Verifier compares the copy with its source.
type Verifier interface {
	// Verify reads, never writing, the old disk old and the new disk nw
	// over the regions of the first size bytes that the clone's metadata
	// device meta records hydrated, but for the sorted ranges skip, and
	// compares them (clone.Verify, paced by o).
	Verify(ctx context.Context, old, nw, meta string, size uint64, skip []clone.Extent, o clone.VerifyOptions) (clone.VerifyResult, error)
	// VerifyHostView reads, never writing, the new disk nw and the device
	// the host is served view over the parts of the sorted ranges only
	// that meta records hydrated, and compares them.
	VerifyHostView(ctx context.Context, nw, view, meta string, only []clone.Extent, o clone.VerifyOptions) (clone.VerifyResult, error)
}

// OldWriter copies the host's writes back to the old LUN at rollback: the
// only port through which lunferry writes the old LUN.
type OldWriter interface {
	// CopyBack reads the sorted extents of src (O_DIRECT) and writes
	// them at the same offsets to the old LUN's disk old (O_DIRECT),
	// paced to rate, then flushes old's write cache. It makes old
	// writable for the copy alone (read-only again after) and returns
	// the bytes copied.
	CopyBack(ctx context.Context, src, old string, extents []clone.Extent, rate clone.Rate) (uint64, error)
}

// Snapshotter is implemented by a port P whose lookups, for one read-only
// pass over many volumes (a status), can be answered from one read of
// the kernel: Snapshot returns a P that reads what it needs at its first
// lookup (the proxy's iSCSI sessions, the dm devices' list, the loop
// devices' backing files) and answers every later lookup from that read.
// Status takes one per call, so that its cost grows with the volumes and
// not with their square; nothing keeps a snapshot across calls, so each
// status still shows the kernel as it is then. Only lookups may be made
// through it.
type Snapshotter[P any] interface {
	Snapshot() P
}

// snapshotOf returns p's snapshot, or p when it takes none.
func snapshotOf[P any](p P) P {
	if s, ok := any(p).(Snapshotter[P]); ok {
		return s.Snapshot()
	}
	return p
}

// snapshot returns ps with the ports that take snapshots replaced by
// one.
func (ps Ports) snapshot() Ports {
	ps.Initiator = snapshotOf(ps.Initiator)
	ps.Mapper = snapshotOf(ps.Mapper)
	ps.Metadata = snapshotOf(ps.Metadata)
	return ps
}

// Ports bundles the ports a Planner drives.
type Ports struct {
	Initiator Initiator
	Mapper    Mapper
	Exporter  Exporter
	Metadata  MetadataDevices
	Hooks     HookRunner
	Fencer    Fencer
	Inhibitor Inhibitor
	Regulator Regulator
	// Scanner names the unreadable ranges of a stalled hydration; nil
	// reports a stall without them.
	Scanner Scanner
	// Verifier compares the old and the new LUN; nil refuses `migrate
	// verify`.
	Verifier Verifier
	// OldWriter copies the host's writes back to the old LUN; nil
	// refuses `migrate rollback`.
	OldWriter OldWriter
	// Era builds the era layer over new volumes' devices; nil builds
	// none (their host's writes since cutover are not tracked).
	Era EraDevices
	// Thin reads the old LUN's LBA status and discards on the clone what
	// it reports unmapped (see thin.go); nil copies every region.
	Thin ThinDevices
	// Secrets checks secret files before the window; nil checks none
	// there (they are still checked when loaded).
	Secrets SecretFiles
}
