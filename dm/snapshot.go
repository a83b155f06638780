package dm

import (
	"fmt"
	"strconv"
	"strings"
)

// COWStore says how a snapshot keeps its copy-on-write exceptions.
type COWStore string

// The exception stores of dm-snapshot (Documentation/admin-guide/
// device-mapper/snapshot.rst).
const (
	// Persistent ("P") keeps exceptions on the COW device across reboots.
	Persistent COWStore = "P"
	// PersistentOverflow ("PO") is persistent and reports "Overflow"
	// instead of invalidating the snapshot when the COW device fills.
	PersistentOverflow COWStore = "PO"
	// Transient ("N") keeps exceptions in memory only.
	Transient COWStore = "N"
)

// Snapshot is a point-in-time copy of Origin: writes to Origin (through a
// SnapshotOrigin device) first copy the old chunk to COW.
//
// Table args: <origin> <COW device> <P|PO|N> <chunk size>
// [<#feature args> [discard_zeroes_cow] [discard_passdown_origin]]
type Snapshot struct {
	// Origin is the device the snapshot is taken of.
	Origin string
	// COW holds the copied chunks and, if persistent, their metadata.
	COW string
	// Store is Persistent, PersistentOverflow or Transient.
	Store COWStore
	// ChunkSize is the copy unit, a power of two.
	ChunkSize Sectors
	// DiscardZeroesCOW and DiscardPassdownOrigin are the optional features.
	DiscardZeroesCOW, DiscardPassdownOrigin bool
}

// Type returns "snapshot".
func (Snapshot) Type() string { return "snapshot" }

// Args renders the constructor arguments.
func (s Snapshot) Args() string {
	a := fmt.Sprintf("%s %s %s %d", s.Origin, s.COW, s.Store, s.ChunkSize)
	var feats []string
	if s.DiscardZeroesCOW {
		feats = append(feats, "discard_zeroes_cow")
	}
	if s.DiscardPassdownOrigin {
		feats = append(feats, "discard_passdown_origin")
	}
	if len(feats) > 0 {
		a += fmt.Sprintf(" %d %s", len(feats), strings.Join(feats, " "))
	}
	return a
}

// Validate checks devices, store and chunk size.
func (s Snapshot) Validate(Sectors) error {
	if err := checkDevice("snapshot origin", s.Origin); err != nil {
		return err
	}
	if err := checkDevice("snapshot cow", s.COW); err != nil {
		return err
	}
	switch s.Store {
	case Persistent, PersistentOverflow, Transient:
	default:
		return fmt.Errorf("snapshot store %q: want P, PO or N", s.Store)
	}
	if !isPowerOfTwo(uint64(s.ChunkSize)) {
		return fmt.Errorf("snapshot chunk size %d sectors: must be a power of two", s.ChunkSize)
	}
	if s.DiscardPassdownOrigin && !s.DiscardZeroesCOW {
		return fmt.Errorf("snapshot: discard_passdown_origin requires discard_zeroes_cow")
	}
	return nil
}

func (s Snapshot) sizeNeeds(length Sectors) []sizeNeed {
	return []sizeNeed{{role: "snapshot origin", device: s.Origin, min: length}}
}

// SnapshotOrigin is the device to write Origin through while snapshots of
// it exist: it copies chunks to every snapshot's COW before overwriting.
//
// Table args: <origin>
type SnapshotOrigin struct {
	// Device is the origin.
	Device string
}

// Type returns "snapshot-origin".
func (SnapshotOrigin) Type() string { return "snapshot-origin" }

// Args renders "<origin>".
func (o SnapshotOrigin) Args() string { return o.Device }

// Validate checks the device argument.
func (o SnapshotOrigin) Validate(Sectors) error { return checkDevice("snapshot-origin", o.Device) }

func (o SnapshotOrigin) sizeNeeds(length Sectors) []sizeNeed {
	return []sizeNeed{{role: "snapshot-origin", device: o.Device, min: length}}
}

// SnapshotStatus is a parsed snapshot status line, one of:
//
//	<sectors allocated>/<total sectors> <metadata sectors>
//	Invalid | Overflow | Merge failed | Unknown
type SnapshotStatus struct {
	// Invalid: the COW device filled up (or failed) and the snapshot was
	// dropped; its data is gone.
	Invalid bool
	// Overflow: a PO snapshot's COW filled up; writes to it fail.
	Overflow bool
	// MergeFailed: a snapshot-merge failed.
	MergeFailed bool
	// Unknown: the exception store reports no usage.
	Unknown bool
	// Allocated of Total COW sectors are in use, Metadata of them by the
	// store's own metadata.
	Allocated, Total, Metadata Sectors
}

// ParseSnapshotStatus parses a snapshot status (params, or a whole
// "start length snapshot params" line).
func ParseSnapshotStatus(line string) (SnapshotStatus, error) {
	s := strings.TrimSpace(line)
	if f := strings.Fields(s); len(f) >= 3 && f[2] == "snapshot" {
		s = strings.Join(f[3:], " ")
	}
	switch s {
	case "Invalid":
		return SnapshotStatus{Invalid: true}, nil
	case "Overflow":
		return SnapshotStatus{Overflow: true}, nil
	case "Merge failed":
		return SnapshotStatus{MergeFailed: true}, nil
	case "Unknown":
		return SnapshotStatus{Unknown: true}, nil
	}
	f := strings.Fields(s)
	if len(f) != 2 {
		return SnapshotStatus{}, fmt.Errorf("dm: parse snapshot status %q: want allocated/total metadata", line)
	}
	a, t, err := parseRatio(f[0])
	if err != nil {
		return SnapshotStatus{}, fmt.Errorf("dm: parse snapshot status %q: %w", line, err)
	}
	m, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return SnapshotStatus{}, fmt.Errorf("dm: parse snapshot status %q: metadata: %w", line, err)
	}
	return SnapshotStatus{Allocated: Sectors(a), Total: Sectors(t), Metadata: Sectors(m)}, nil
}
