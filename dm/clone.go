package dm

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits of the clone region size (drivers/md/dm-clone-target.c
// MIN_REGION_SIZE and MAX_REGION_SIZE): 4 KiB to 1 GiB, a power of two.
const (
	CloneMinRegionSize Sectors = 8
	CloneMaxRegionSize Sectors = 2097152
)

// Clone feature and core argument names.
const (
	CloneFeatureNoHydration       = "no_hydration"
	CloneFeatureNoDiscardPassdown = "no_discard_passdown"
	CloneArgHydrationThreshold    = "hydration_threshold"
	CloneArgHydrationBatchSize    = "hydration_batch_size"
)

// Clone is dm-clone: it presents Source's data at once and copies it region
// by region onto Destination in the background ("hydration"), recording
// hydrated regions in Metadata. Reads of unhydrated regions go to Source,
// writes hydrate their region first; Source is never written.
//
// Table args (Documentation/admin-guide/device-mapper/dm-clone.rst):
//
//	<metadata dev> <destination dev> <source dev> <region size>
//	[<#feature args> [<feature arg>]* [<#core args> [<core arg>]*]]
type Clone struct {
	// Metadata is the small device holding the hydration bitmap.
	Metadata string
	// Destination receives the copy; it must be at least the target's length.
	Destination string
	// Source is read only; it must be at least the target's length.
	Source string
	// RegionSize is the hydration unit: a power of two from 8 to 2097152.
	// Small regions hydrate slowly: 128 sectors with HydrationThreshold 64
	// and HydrationBatchSize 16 was over 10x faster than the defaults in
	// the lab.
	RegionSize Sectors
	// NoHydration creates the device with background hydration disabled;
	// send EnableHydration to start it.
	NoHydration bool
	// NoDiscardPassdown stops passing discards down to Destination. The
	// kernel sets it by itself when Destination does not support discard.
	NoDiscardPassdown bool
	// HydrationThreshold is the maximum number of regions copied at once;
	// zero leaves the kernel default (1).
	HydrationThreshold uint
	// HydrationBatchSize batches this many contiguous regions per copy;
	// zero leaves the kernel default (1).
	HydrationBatchSize uint
}

// Type returns "clone".
func (Clone) Type() string { return "clone" }

// Args renders the constructor arguments; the feature count is written
// (possibly 0) whenever core arguments follow, as the kernel's positional
// groups require.
func (c Clone) Args() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %d", c.Metadata, c.Destination, c.Source, c.RegionSize)
	var feats []string
	if c.NoHydration {
		feats = append(feats, CloneFeatureNoHydration)
	}
	if c.NoDiscardPassdown {
		feats = append(feats, CloneFeatureNoDiscardPassdown)
	}
	var core []string
	if c.HydrationThreshold != 0 {
		core = append(core, CloneArgHydrationThreshold, strconv.FormatUint(uint64(c.HydrationThreshold), 10))
	}
	if c.HydrationBatchSize != 0 {
		core = append(core, CloneArgHydrationBatchSize, strconv.FormatUint(uint64(c.HydrationBatchSize), 10))
	}
	if len(feats) == 0 && len(core) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, " %d", len(feats))
	for _, f := range feats {
		b.WriteByte(' ')
		b.WriteString(f)
	}
	if len(core) > 0 {
		fmt.Fprintf(&b, " %d %s", len(core), strings.Join(core, " "))
	}
	return b.String()
}

// Validate checks the devices and the region size.
func (c Clone) Validate(length Sectors) error {
	for _, d := range [][2]string{{"metadata", c.Metadata}, {"destination", c.Destination}, {"source", c.Source}} {
		if err := checkDevice(d[0], d[1]); err != nil {
			return err
		}
	}
	if !isPowerOfTwo(uint64(c.RegionSize)) || c.RegionSize < CloneMinRegionSize || c.RegionSize > CloneMaxRegionSize {
		return fmt.Errorf("clone region size %d sectors: must be a power of two from %d to %d",
			c.RegionSize, CloneMinRegionSize, CloneMaxRegionSize)
	}
	return nil
}

func (c Clone) sizeNeeds(length Sectors) []sizeNeed {
	return []sizeNeed{
		{role: "clone destination", device: c.Destination, min: length},
		{role: "clone source", device: c.Source, min: length},
	}
}

// CloneStatus is a parsed dm-clone status line:
//
//	<metadata block size> <#used metadata blocks>/<#total metadata blocks>
//	<region size> <#hydrated regions>/<#total regions> <#hydrating regions>
//	<#feature args> <feature args>* <#core args> <core args>*
//	<clone metadata mode>
//
// or the single word "Fail" when the metadata failed. Hydrated/total regions
// is the 4th field, after the region size (lab NOTES pitfall 3).
type CloneStatus struct {
	// Failed is set when the kernel reported "Fail": no further I/O is
	// permitted and every other field is zero.
	Failed bool
	// MetadataBlockSize is the fixed metadata block size.
	MetadataBlockSize Sectors
	// MetadataUsed and MetadataTotal count metadata blocks.
	MetadataUsed, MetadataTotal uint64
	// RegionSize is the hydration unit.
	RegionSize Sectors
	// HydratedRegions of TotalRegions are on the destination.
	HydratedRegions, TotalRegions uint64
	// HydratingRegions are being copied right now.
	HydratingRegions uint64
	// Features are the active feature flags, e.g. "no_hydration".
	Features []string
	// CoreArgs are the core key/value pairs as reported.
	CoreArgs map[string]string
	// HydrationThreshold and HydrationBatchSize are parsed from CoreArgs.
	HydrationThreshold, HydrationBatchSize uint
	// MetadataMode is "rw", "ro" (metadata degraded to read only) or "Fail".
	MetadataMode string
}

// Hydrated reports whether every region is on the destination: the device
// can then be swapped to a linear table over the destination.
func (s CloneStatus) Hydrated() bool {
	return !s.Failed && s.TotalRegions > 0 && s.HydratedRegions == s.TotalRegions
}

// Faulty reports whether the clone can no longer be trusted to hydrate:
// its metadata failed or fell back to read only.
func (s CloneStatus) Faulty() bool { return s.Failed || s.MetadataMode != "rw" }

// Fraction is the hydrated share, 0 to 1.
func (s CloneStatus) Fraction() float64 {
	if s.TotalRegions == 0 {
		return 0
	}
	return float64(s.HydratedRegions) / float64(s.TotalRegions)
}

// HydrationEnabled reports whether background hydration runs (the
// no_hydration feature is absent).
func (s CloneStatus) HydrationEnabled() bool { return !s.HasFeature(CloneFeatureNoHydration) }

// HasFeature reports whether feature f is listed.
func (s CloneStatus) HasFeature(f string) bool {
	for _, x := range s.Features {
		if x == f {
			return true
		}
	}
	return false
}

// ParseCloneStatus parses a clone status: the target's params as Status
// returns them, or a whole "start length clone params" line as dmsetup
// status prints it.
func ParseCloneStatus(line string) (CloneStatus, error) {
	f := strings.Fields(line)
	if len(f) >= 3 && f[2] == "clone" {
		f = f[3:]
	}
	bad := func(what string, err error) (CloneStatus, error) {
		if err != nil {
			return CloneStatus{}, fmt.Errorf("dm: parse clone status %q: %s: %w", line, what, err)
		}
		return CloneStatus{}, fmt.Errorf("dm: parse clone status %q: %s", line, what)
	}
	if len(f) == 1 && f[0] == "Fail" {
		return CloneStatus{Failed: true, MetadataMode: "Fail"}, nil
	}
	if len(f) < 8 {
		return bad("too few fields", nil)
	}
	var s CloneStatus
	var err error
	var u uint64
	if u, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return bad("metadata block size", err)
	}
	s.MetadataBlockSize = Sectors(u)
	if s.MetadataUsed, s.MetadataTotal, err = parseRatio(f[1]); err != nil {
		return bad("metadata blocks", err)
	}
	if u, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return bad("region size", err)
	}
	s.RegionSize = Sectors(u)
	if s.HydratedRegions, s.TotalRegions, err = parseRatio(f[3]); err != nil {
		return bad("hydrated regions", err)
	}
	if s.HydratingRegions, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return bad("hydrating regions", err)
	}
	rest := f[5:]
	feats, rest, err := takeGroup(rest)
	if err != nil {
		return bad("features", err)
	}
	s.Features = feats
	core, rest, err := takeGroup(rest)
	if err != nil {
		return bad("core args", err)
	}
	if len(core)%2 != 0 {
		return bad("odd number of core args", nil)
	}
	s.CoreArgs = make(map[string]string, len(core)/2)
	for i := 0; i < len(core); i += 2 {
		s.CoreArgs[core[i]] = core[i+1]
	}
	if v, ok := s.CoreArgs[CloneArgHydrationThreshold]; ok {
		if u, err = strconv.ParseUint(v, 10, 32); err != nil {
			return bad(CloneArgHydrationThreshold, err)
		}
		s.HydrationThreshold = uint(u)
	}
	if v, ok := s.CoreArgs[CloneArgHydrationBatchSize]; ok {
		if u, err = strconv.ParseUint(v, 10, 32); err != nil {
			return bad(CloneArgHydrationBatchSize, err)
		}
		s.HydrationBatchSize = uint(u)
	}
	if len(rest) != 1 {
		return bad("want one metadata mode after the core args", nil)
	}
	s.MetadataMode = rest[0]
	switch s.MetadataMode {
	case "rw", "ro":
	case "Fail":
		s.Failed = true
	default:
		return bad("unknown metadata mode "+strconv.Quote(s.MetadataMode), nil)
	}
	return s, nil
}

// parseRatio parses "a/b".
func parseRatio(s string) (uint64, uint64, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not a/b", s)
	}
	x, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	y, err := strconv.ParseUint(b, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	return x, y, nil
}

// takeGroup splits "<#n> <item>*n" off the front of f.
func takeGroup(f []string) ([]string, []string, error) {
	if len(f) == 0 {
		return nil, nil, fmt.Errorf("missing count")
	}
	n, err := strconv.ParseUint(f[0], 10, 16)
	if err != nil {
		return nil, nil, err
	}
	if uint64(len(f)-1) < n {
		return nil, nil, fmt.Errorf("count %d but %d fields follow", n, len(f)-1)
	}
	return append([]string(nil), f[1:1+n]...), f[1+n:], nil
}

// Clone messages (send with Client.Message at sector 0).
const (
	// MsgEnableHydration starts background hydration.
	MsgEnableHydration = "enable_hydration"
	// MsgDisableHydration stops background hydration; user I/O still
	// hydrates the regions it writes.
	MsgDisableHydration = "disable_hydration"
)

// MsgHydrationThreshold renders "hydration_threshold N": at most n regions
// copied at once.
func MsgHydrationThreshold(n uint) string {
	return CloneArgHydrationThreshold + " " + strconv.FormatUint(uint64(n), 10)
}

// MsgHydrationBatchSize renders "hydration_batch_size N": batch n contiguous
// regions per copy.
func MsgHydrationBatchSize(n uint) string {
	return CloneArgHydrationBatchSize + " " + strconv.FormatUint(uint64(n), 10)
}
