package plan

import (
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/initiator/scsi"
)

// StateVersion is the version of the state file format this lunferry writes.
// A file with a higher version is refused untouched.
const StateVersion = 1

// Step is where a volume's migration stands. Steps come in pairs: the "-ing"
// step is saved before the kernel is touched, the "-ed" step after every
// kernel action of the step succeeded. A volume found in an "-ing" step was
// interrupted: re-running the same command resumes it (every kernel action
// looks up before it creates), abort rolls it back.
type Step string

// The steps, in workflow order.
const (
	// StepNew: the volume is known; nothing exists in the kernel.
	StepNew Step = "new"
	// StepPreparing/StepPrepared: new LUN attached, sizes checked,
	// metadata device created.
	StepPreparing Step = "preparing"
	StepPrepared  Step = "prepared"
	// StepCuttingOver/StepCutOver: old LUN attached read-only, clone
	// device built with hydration off, exported to the host, host logged
	// in.
	StepCuttingOver Step = "cutting-over"
	StepCutOver     Step = "cut-over"
	// StepHydrating/StepHydrated: background hydration enabled; all
	// regions hydrated.
	StepHydrating Step = "hydrating"
	StepHydrated  Step = "hydrated"
	// StepFinalizing/StepFinalized: table swapped live to linear over the
	// new LUN, old LUN detached, metadata freed.
	StepFinalizing Step = "finalizing"
	StepFinalized  Step = "finalized"
	// StepHandingOver/StepHandedOver (optional, after finalize):
	// pre-handover hooks moved the host to the new array, the host has no
	// session left on the proxy's export, the export, the linear device
	// and the proxy's session to the new LUN are removed, post-handover
	// hooks ran. Handed over is final: the proxy holds nothing of the
	// volume and `lunferry volume remove` forgets it.
	StepHandingOver Step = "handing-over"
	StepHandedOver  Step = "handed-over"
	// StepRollingBack/StepRolledBack (between cutover and finalize): the
	// blocks the host wrote since cutover are copied back to the old LUN
	// in rounds, then the device is swapped live to linear over the old
	// LUN, which from then on holds every write of the host (see
	// rollback.go). Abort then ends the migration on the old array with
	// nothing lost.
	StepRollingBack Step = "rolling-back"
	StepRolledBack  Step = "rolled-back"
	// StepAborting/StepAborted: everything lunferry built is removed; the
	// old LUN is as it was.
	StepAborting Step = "aborting"
	StepAborted  Step = "aborted"
	// StepFaulty: the kernel reported the clone failed; only abort (and
	// status) apply.
	StepFaulty Step = "faulty"
)

// DefaultStallAfter is the least time without progress after which a
// hydrating volume counts as stalled, unless its spec says otherwise; slow
// throttles get ten regions' time.
const DefaultStallAfter = 2 * time.Minute

// MinStallAfter is the least stallAfter a spec may give: shorter would
// call an array's ordinary pauses (a path failover) a stall.
const MinStallAfter = 10 * time.Second

// Stalled reports whether v should be hydrating but has made no progress
// for long, and since when: dm-clone retries a region it cannot read
// forever, and waits for an array that is gone.
func (v *Volume) Stalled(now time.Time) (since time.Time, stalled bool) {
	if v.Step != StepHydrating || v.Paused || v.ProgressAt.IsZero() {
		return time.Time{}, false
	}
	rate := v.Spec.Throttle.RateAt(now)
	if rate == clone.Paused {
		return time.Time{}, false
	}
	wait := v.Spec.StallAfter.D()
	if wait == 0 {
		wait = DefaultStallAfter
	}
	if rate != clone.Unlimited && v.Progress.RegionSectors > 0 {
		wait = max(wait, time.Duration(float64(10*v.Progress.RegionSectors*512)/float64(rate)*float64(time.Second)))
	}
	return v.ProgressAt, now.Sub(v.ProgressAt) > wait
}

// allSteps lists every step, in workflow order.
var allSteps = []Step{StepNew, StepPreparing, StepPrepared, StepCuttingOver, StepCutOver, StepHydrating,
	StepHydrated, StepFinalizing, StepFinalized, StepHandingOver, StepHandedOver, StepRollingBack, StepRolledBack,
	StepAborting, StepAborted, StepFaulty}

// Finalized reports whether the live swap to linear over the new LUN is
// done and the old LUN released: finalized, or handing over or handed over
// after it.
func (s Step) Finalized() bool {
	return s == StepFinalized || s == StepHandingOver || s == StepHandedOver
}

// ObjectKind names a kernel object lunferry creates for a volume.
type ObjectKind string

// The kernel objects, in the order a migration creates them.
const (
	// ObjNewLogin: a session to the new LUN's target.
	ObjNewLogin ObjectKind = "new-login"
	// ObjMetadata: the dm-clone metadata device (loop over a file under
	// the state directory, or a given device).
	ObjMetadata ObjectKind = "metadata"
	// ObjOldLogin: a session to the old LUN's target; its disk is set
	// read-only.
	ObjOldLogin ObjectKind = "old-login"
	// ObjDevice: the device-mapper device "lunferry-<volume>" (clone, then
	// linear after finalize).
	ObjDevice ObjectKind = "device"
	// ObjExport: the LIO target serving the device to the host.
	ObjExport ObjectKind = "export"
	// ObjEra: the dm-era device "lunferry-<volume>-era" over the device,
	// which the export serves, and its metadata (loop over a file under
	// the state directory): it records which blocks the host wrote since
	// cutover. Finalize keeps it; volumes cut over before lunferry built
	// it have none.
	ObjEra ObjectKind = "era"
	// ObjFence: lunferry's persistent reservation on the old LUN (taken
	// at cutover, held until finalize detaches the old LUN).
	ObjFence ObjectKind = "fence"
)

// Object is one entry of a volume's undo stack. It is pushed (Pending) and
// saved before the kernel call that creates it, and marked done after, so a
// crash in between leaves a record: an object with lunferry's name that is
// in no volume's stack was not created by this state, and is refused.
type Object struct {
	// Kind says what the object is.
	Kind ObjectKind `json:"kind"`
	// Name is the kernel name: dm name, target IQN, loop backing file,
	// target "portal,iqn".
	Name string `json:"name"`
	// Device is the block device node, when the object has one.
	Device string `json:"device,omitempty"`
	// Pending is true between the save before creation and the save
	// after it.
	Pending bool `json:"pending,omitempty"`
}

// Disk is a block device found for a LUN.
type Disk struct {
	// Path is the device node, e.g. /dev/sdb.
	Path string `json:"path"`
	// SizeBytes is the device's size.
	SizeBytes uint64 `json:"sizeBytes"`
	// ID is a stable identity (the SCSI VPD 0x83 WWID) when known; two
	// disks with the same non-empty ID are the same LUN.
	ID string `json:"id,omitempty"`
	// Dev is the device number "major:minor", as device-mapper tables
	// name their devices.
	Dev string `json:"dev,omitempty"`
	// LogicalBlockSize is the disk's logical block size in bytes (0:
	// unknown).
	LogicalBlockSize uint32 `json:"logicalBlockSize,omitempty"`
	// WriteBack and FUA are what the LUN reports of its cache: a volatile
	// write cache (WCE) and Force Unit Access (DPOFUA).
	WriteBack bool `json:"writeBack,omitempty"`
	FUA       bool `json:"fua,omitempty"`
}

// HostIdentity is the SCSI identity the export shows the host: derived
// once, from the old LUN's, and kept, so that every restore shows the same
// disk.
type HostIdentity struct {
	// Export is what the storage object is given.
	Export scsi.Export `json:"export"`
	// Verdict says how it compares with the old LUN.
	Verdict scsi.Verdict `json:"verdict"`
}

// Progress is the last hydration progress seen.
type Progress struct {
	// HydratedRegions and TotalRegions come from the clone's status.
	HydratedRegions uint64 `json:"hydratedRegions"`
	TotalRegions    uint64 `json:"totalRegions"`
	// RegionSectors is the region size.
	RegionSectors uint64 `json:"regionSectors"`
	// Rate is the measured hydration rate in bytes per second.
	Rate float64 `json:"rate"`
	// ETA is the estimated time to completion at the measured rate.
	ETA Duration `json:"eta,omitempty"`
	// At is when the progress was read.
	At time.Time `json:"at,omitempty"`
}

// Fraction is hydrated/total, 0 when total is unknown.
func (p Progress) Fraction() float64 {
	if p.TotalRegions == 0 {
		return 0
	}
	return float64(p.HydratedRegions) / float64(p.TotalRegions)
}

// Volume is the persisted record of one volume's migration: what was asked
// (Spec) and where it stands.
type Volume struct {
	// Version is StateVersion of the lunferry that wrote the record.
	Version int `json:"version"`
	// Spec is the volume's description.
	Spec Spec `json:"spec"`
	// Step is the current step.
	Step Step `json:"step"`
	// FaultFrom is the step the volume was in when it became faulty.
	FaultFrom Step `json:"faultFrom,omitempty"`
	// LastError is the error that interrupted the current "-ing" step.
	LastError string `json:"lastError,omitempty"`
	// Objects is the undo stack of kernel objects created, oldest first.
	Objects []Object `json:"objects,omitempty"`
	// OldIdentity is the old LUN's SCSI identity, read at its first
	// attach; every later attach must find the same WWID.
	OldIdentity *scsi.Identity `json:"oldIdentity,omitempty"`
	// HostIdentity is what the export shows the host.
	HostIdentity *HostIdentity `json:"hostIdentity,omitempty"`
	// OldDisk and NewDisk are the disks found for the LUNs.
	OldDisk *Disk `json:"oldDisk,omitempty"`
	NewDisk *Disk `json:"newDisk,omitempty"`
	// SizeSectors is the volume's size as the host sees it (the old
	// LUN's size), fixed at prepare.
	SizeSectors uint64 `json:"sizeSectors,omitempty"`
	// MetadataFile is the loop device's backing file, when lunferry made
	// one; MetadataBytes its size.
	MetadataFile  string `json:"metadataFile,omitempty"`
	MetadataBytes uint64 `json:"metadataBytes,omitempty"`
	// Thin is what the offline cutover skipped of the old LUN's unmapped
	// ranges (see thin.go), nil when it did not look.
	Thin *ThinState `json:"thin,omitempty"`
	// Era is the era layer's record, set when ObjEra is first created.
	Era *EraState `json:"era,omitempty"`
	// HooksDone lists hooks of the current step that completed, so a
	// resumed step does not run them twice.
	HooksDone []string `json:"hooksDone,omitempty"`
	// Progress is the last hydration progress seen.
	Progress Progress `json:"progress"`
	// ProgressAt is when hydration last made progress (or began): a
	// hydrating volume that makes none for long is stalled (see Stalled).
	ProgressAt time.Time `json:"progressAt,omitempty"`
	// Unreadable is what `lunferry run` found on the old LUN for a stalled
	// hydration (see UnreadableScan).
	Unreadable *UnreadableScan `json:"unreadable,omitempty"`
	// Linear is set once finalize swapped the device to linear over the
	// new LUN: from then on abort is refused and restore builds linear.
	Linear bool `json:"linear,omitempty"`
	// SwapHeld is how long finalize's table swap held the host's I/O.
	SwapHeld Duration `json:"swapHeld,omitempty"`
	// Rollback is the record of a rollback, set when it starts.
	Rollback *RollbackState `json:"rollback,omitempty"`
	// Exported is set once the export was created: from then on the host
	// may have written to the new LUN only.
	Exported bool `json:"exported,omitempty"`
	// AbortFrom is the step an abort started from.
	AbortFrom Step `json:"abortFrom,omitempty"`
	// AbortTeardown is set when an abort, its pre-abort hooks done (the
	// host left the proxy), began removing the proxy's objects. Before
	// that, an interrupted abort is only pending: restore rebuilds what
	// serves the host, and the abort can be finished or cancelled.
	AbortTeardown bool `json:"abortTeardown,omitempty"`
	// Unreachable maps an array ("old", "new") whose session `lunferry
	// run` found not logged in (in recovery) to when it first saw it so;
	// run clears it once the session is back.
	Unreachable map[string]time.Time `json:"unreachable,omitempty"`
	// Paused is set by pause, cleared by resume.
	Paused bool `json:"paused,omitempty"`
	// Cutover records how the cutover runs, fixed at its first run (a
	// rerun and restore go on the same way): online or not, fenced or
	// not, the fence's key and the online phase reached.
	Cutover *CutoverMode `json:"cutover,omitempty"`
	// Window is the cutover's timing (partial while cutting over).
	Window *WindowTimes `json:"window,omitempty"`
	// WindowStart is when the first cutover attempt began.
	WindowStart time.Time `json:"windowStart,omitempty"`
	// Times of the step changes.
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	CutOverAt  time.Time `json:"cutOverAt,omitempty"`
	HydratedAt time.Time `json:"hydratedAt,omitempty"`
	// FinalizedAt and AbortedAt: when the terminal step was reached.
	FinalizedAt time.Time `json:"finalizedAt,omitempty"`
	AbortedAt   time.Time `json:"abortedAt,omitempty"`
	// HostMovedAt is when handover found the host gone from the proxy's
	// export (or was forced) and began removing the proxy's objects: from
	// then on restore no longer rebuilds them (the host is on the new
	// array) and a rerun of handover finishes the removal.
	HostMovedAt time.Time `json:"hostMovedAt,omitempty"`
	// HandedOverAt is when handover completed.
	HandedOverAt time.Time `json:"handedOverAt,omitempty"`
}

// WindowTimes measures a cutover.
type WindowTimes struct {
	// Tool is the time lunferry itself spent in the window (kernel
	// actions: attach old LUN, build clone, export), hooks and the wait
	// for the host's session excluded.
	Tool Duration `json:"tool"`
	// Hooks is the time spent in pre- and post-cutover hooks.
	Hooks Duration `json:"hooks"`
	// SessionWait is the time from the end of the post-cutover hooks to
	// the host's session appearing.
	SessionWait Duration `json:"sessionWait"`
	// Total is wall time from the start of the pre-cutover hooks (of the
	// first attempt, for a resumed cutover) to the host's session. Tool
	// and Hooks add up over the attempts.
	Total Duration `json:"total"`
}

// DMName is the device-mapper name of a volume's device.
func DMName(volume string) string { return Prefix + volume }

// Prefix starts the name of every kernel object lunferry creates.
const Prefix = "lunferry-"

func (v *Volume) object(kind ObjectKind) *Object {
	for i := range v.Objects {
		if v.Objects[i].Kind == kind {
			return &v.Objects[i]
		}
	}
	return nil
}

func (v *Volume) hookDone(id string) bool {
	for _, h := range v.HooksDone {
		if h == id {
			return true
		}
	}
	return false
}
