package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/lio"
)

// DefaultRegionSectors is the dm-clone region size used when a spec gives
// none: 128 sectors (64 KiB). In the lab, 128-sector regions hydrated about
// ten times faster than the kernel's minimum of 8 sectors.
const DefaultRegionSectors = 128

// DefaultEraBlockSectors is the dm-era block size used when a spec gives
// none, or the spec's region size when that is smaller: rollback needs each
// era block within one clone region. 128 sectors (64 KiB), the clone's
// default region: a larger block cost host writes less in the bench but
// needs larger regions, which delay the host's writes during hydration
// (integration/README.md, "Era block size").
const DefaultEraBlockSectors = 128

// DefaultHookTimeout bounds a hook that gives no timeout of its own.
const DefaultHookTimeout = 5 * time.Minute

// DefaultSessionTimeout bounds the wait for the host's session after the
// post-cutover hooks ran.
const DefaultSessionTimeout = 2 * time.Minute

// Spec describes one volume's migration. It comes from command-line flags or
// from a runbook file (see Runbook) and does not change once the migration
// has been prepared, except for the throttle.
type Spec struct {
	// Name identifies the volume inside lunferry: 1-32 characters out of
	// a-z, 0-9 and "-", starting with a letter or digit. Kernel objects are
	// named "lunferry-<name>".
	Name string `json:"name"`
	// Old is the LUN on the old array (the source, never written).
	Old LUN `json:"old"`
	// New is the LUN on the new array (the destination).
	New LUN `json:"new"`
	// HostIQN is the initiator name of the application host; the export
	// admits this IQN only.
	HostIQN string `json:"hostIQN"`
	// Export is the target through which the proxy serves the volume to
	// the host.
	Export Export `json:"export"`
	// RegionSectors is the dm-clone region size in 512-byte sectors: a
	// power of two from 8 to 2097152. 0 means DefaultRegionSectors.
	RegionSectors uint64 `json:"regionSectors,omitempty"`
	// Metadata chooses the dm-clone metadata device.
	Metadata Metadata `json:"metadata,omitempty"`
	// EraBlockSectors is the dm-era block size in 512-byte sectors, the
	// granularity at which the host's writes since cutover are tracked: a
	// power of two from 8 to 2097152. 0 means DefaultEraBlockSectors.
	EraBlockSectors uint64 `json:"eraBlockSectors,omitempty"`
	// Throttle limits background hydration: a schedule such as
	// "mon-fri 08:00-18:00=50MiB/s; *=200MiB/s" (clone.ParseSchedule);
	// empty means unlimited. The clause "adaptive" makes hydration yield
	// to the host's I/O latency under those rates (clone.Yield).
	Throttle clone.Schedule `json:"throttle"`
	// Identity is "old" (the default: the export shows the host the old
	// LUN's SCSI identity, and prepare refuses an old LUN whose identity
	// LIO cannot reproduce) or "new" (the export gets an identity of its
	// own, derived once and kept: the host sees a new disk).
	Identity string `json:"identity,omitempty"`
	// Reservations is "" (a cutover refuses an old LUN that holds SCSI-3
	// persistent reservations: a cluster's keys do not follow the proxy)
	// or "ignore" (go on, with a warning).
	Reservations string `json:"reservations,omitempty"`
	// Cutover is "" or "offline" (the host stops for a window while the
	// proxy takes over) or "online" (a multipath host gains paths through
	// the proxy, loses its direct ones, and the proxy takes over live;
	// see plan/online.go).
	Cutover string `json:"cutover,omitempty"`
	// Fence is "" (the cutover fences the old LUN with a persistent
	// reservation where the array allows; an online cutover refuses an
	// array that does not) or "none".
	Fence string `json:"fence,omitempty"`
	// Thin is "" (the offline cutover skips the regions a thin old LUN
	// reports unmapped, where that is safe: see thin.go) or "copy" (every
	// region is copied).
	Thin string `json:"thin,omitempty"`
	// Hooks are the executables run around the host-facing steps.
	Hooks Hooks `json:"hooks,omitempty"`
	// SessionTimeout bounds the wait for the host's session at cutover;
	// 0 means DefaultSessionTimeout.
	SessionTimeout Duration `json:"sessionTimeout,omitempty"`
	// StallAfter is how long a hydrating volume may make no progress
	// before it counts as stalled (reported by run, status --check and
	// finalize); 0 means DefaultStallAfter. At least MinStallAfter.
	StallAfter Duration `json:"stallAfter,omitempty"`
}

// LUN addresses one logical unit behind an iSCSI target.
type LUN struct {
	// Portal is the target portal, "host:port" (port 3260 if omitted).
	Portal string `json:"portal"`
	// IQN is the target's iSCSI qualified name.
	IQN string `json:"iqn"`
	// LUN is the logical unit number behind the target.
	LUN int `json:"lun"`
	// CHAP gives the session's credentials, if the target wants them:
	// one-way (username, secretFile) or mutual (plus mutualUsername,
	// mutualSecretFile, with which the array proves itself). They are
	// used for the session only, never offered on discovery.
	CHAP *CHAP `json:"chap,omitempty"`
	// DiscoveryCHAP gives the credentials of the portal's SendTargets
	// discovery, if the array wants CHAP there too (same shape as CHAP;
	// often other credentials than the session's). Without it discovery
	// offers none, which is what an array with CHAP on sessions only
	// (LIO's default) wants.
	DiscoveryCHAP *CHAP `json:"discoveryChap,omitempty"`
	// SizeBytes optionally states the LUN's size. For the old LUN it lets
	// prepare check sizes before the old LUN is mapped to the proxy; the
	// size seen at cutover must then match it.
	SizeBytes Bytes `json:"sizeBytes,omitempty"`
	// SessionTimeouts are the proxy's session timeouts towards this
	// array; nil or zero fields take the defaults (see SessionTimeouts).
	SessionTimeouts *SessionTimeouts `json:"sessionTimeouts,omitempty"`
}

// CHAP names the files that hold CHAP secrets; the secrets themselves are
// never stored in lunferry's state, arguments, logs or dry-run output.
// Secret files must be owned by root with mode 0600 (or 0400): prepare and
// cutover check them before the window.
type CHAP struct {
	// Username is the CHAP user name the initiator presents.
	Username string `json:"username"`
	// SecretFile holds the CHAP password (trailing newline ignored).
	SecretFile string `json:"secretFile"`
	// MutualUsername and MutualSecretFile, if set, enable mutual CHAP.
	MutualUsername string `json:"mutualUsername,omitempty"`
	// MutualSecretFile holds the target's mutual CHAP password.
	MutualSecretFile string `json:"mutualSecretFile,omitempty"`
}

// Export describes the proxy's target for the host.
type Export struct {
	// IQN is the target name the host logs in to.
	IQN string `json:"iqn"`
	// Portals are the "ip:port" addresses the target listens on.
	Portals []string `json:"portals"`
	// AllowWildcardPortal lets a portal be 0.0.0.0 or [::], listening on
	// every address of the proxy (and so on every network it is on);
	// refused unless set.
	AllowWildcardPortal bool `json:"allowWildcardPortal,omitempty"`
	// CHAP, if set, makes the host authenticate to the export: Username
	// and SecretFile are what the host presents; MutualUsername and
	// MutualSecretFile, if set, what the proxy presents to the host
	// (mutual CHAP).
	CHAP *CHAP `json:"chap,omitempty"`
}

// Metadata chooses the dm-clone metadata device.
type Metadata struct {
	// Device, if set, is a block device used as metadata; its first 4 KiB
	// are zeroed at prepare. Empty means a file-backed loop device under
	// the state directory.
	Device string `json:"device,omitempty"`
	// EraDevice, if set, is a block device used as the era layer's
	// metadata (at least EraMetadataBytes); its first 4 KiB are zeroed at
	// cutover. Empty means a file-backed loop device under the state
	// directory, beside the clone's.
	EraDevice string `json:"eraDevice,omitempty"`
}

// Hooks lists the executables run at each phase. Each is run without a
// shell, with the environment variables described in hooks.go.
type Hooks struct {
	// PreCutover runs before the proxy takes over: quiesce the host, map
	// the old LUN to the proxy on the old array.
	PreCutover []string `json:"preCutover,omitempty"`
	// PostCutover runs once the export exists: the host logs in.
	PostCutover []string `json:"postCutover,omitempty"`
	// PreFinalize runs before the table swap to linear.
	PreFinalize []string `json:"preFinalize,omitempty"`
	// PostFinalize runs after finalize.
	PostFinalize []string `json:"postFinalize,omitempty"`
	// PreAbort runs before an abort removes the export: stop the host's
	// I/O and log it out of the proxy.
	PreAbort []string `json:"preAbort,omitempty"`
	// PostAbort runs after an abort: e.g. point the host back to the old
	// array.
	PostAbort []string `json:"postAbort,omitempty"`
	// PreHandover runs at handover (after finalize), before the proxy's
	// objects are removed, and moves the host to the new array: on the new
	// array, map the new LUN to the host's IQN; on the host, log out of the
	// proxy's export and log in to the new array. Handover refuses to go on
	// while the host still has a session on the export.
	PreHandover []string `json:"preHandover,omitempty"`
	// PostHandover runs once the proxy's export, device and session to the
	// new LUN are gone: e.g. unmap the new LUN from the proxy's IQN on the
	// new array.
	PostHandover []string `json:"postHandover,omitempty"`
	// PreRollback runs before a rollback after finalize attaches the old
	// LUN again: map it to the proxy's IQN on the old array (finalize
	// let it go).
	PreRollback []string `json:"preRollback,omitempty"`
	// AddPaths (online cutover) logs the host in to the export: its
	// multipath map gains the proxied paths.
	AddPaths []string `json:"addPaths,omitempty"`
	// CheckPaths (online, optional) exits 0 once the host's map holds the
	// proxied paths; it is retried until the session timeout.
	CheckPaths []string `json:"checkPaths,omitempty"`
	// RemoveDirectPaths (online) removes the host's direct paths (host:
	// multipathd del path, logout of the old array; array: unmap the
	// host); it must succeed before the proxy takes over.
	RemoveDirectPaths []string `json:"removeDirectPaths,omitempty"`
	// RestoreDirectPaths (online back-out) logs the host in to the old
	// array again, so its map regains the direct paths, then removes and
	// logs out of the proxied ones.
	RestoreDirectPaths []string `json:"restoreDirectPaths,omitempty"`
	// Timeout bounds each hook; 0 means DefaultHookTimeout.
	Timeout Duration `json:"timeout,omitempty"`
}

// phases lists the hooks by their runbook field name.
func (h Hooks) phases() []struct {
	field string
	paths []string
} {
	return []struct {
		field string
		paths []string
	}{{"preCutover", h.PreCutover}, {"postCutover", h.PostCutover}, {"preFinalize", h.PreFinalize},
		{"postFinalize", h.PostFinalize}, {"preAbort", h.PreAbort}, {"postAbort", h.PostAbort},
		{"preHandover", h.PreHandover}, {"postHandover", h.PostHandover}, {"preRollback", h.PreRollback}, {"addPaths", h.AddPaths},
		{"checkPaths", h.CheckPaths}, {"removeDirectPaths", h.RemoveDirectPaths}, {"restoreDirectPaths", h.RestoreDirectPaths}}
}

// Runbook is the file form of several volumes' specs:
//
//	{"volumes": [ {Spec}, ... ]}
type Runbook struct {
	// Volumes are the specs, in the order they are added.
	Volumes []Spec `json:"volumes"`
}

// ReadRunbook reads and validates a runbook file. Unknown fields are errors,
// so that a typo in a runbook is found before the window.
func ReadRunbook(path string) (Runbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Runbook{}, fmt.Errorf("plan: read runbook: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var rb Runbook
	if err := dec.Decode(&rb); err != nil {
		return Runbook{}, fmt.Errorf("plan: runbook %s: %w: %w", path, ErrInvalidSpec, err)
	}
	if len(rb.Volumes) == 0 {
		return Runbook{}, fmt.Errorf("plan: runbook %s: %w: no volumes", path, ErrInvalidSpec)
	}
	for i := range rb.Volumes {
		rb.Volumes[i].Normalize()
		if err := rb.Volumes[i].Validate(); err != nil {
			return Runbook{}, fmt.Errorf("plan: runbook %s volume %d: %w", path, i+1, err)
		}
	}
	return rb, nil
}

// Normalize fills defaults: the region size and ports of portals.
func (s *Spec) Normalize() {
	if s.RegionSectors == 0 {
		s.RegionSectors = DefaultRegionSectors
	}
	s.Old.Portal = withPort(s.Old.Portal)
	s.New.Portal = withPort(s.New.Portal)
	for i, p := range s.Export.Portals {
		s.Export.Portals[i] = withPort(p)
	}
}

func withPort(p string) string {
	if p == "" {
		return p
	}
	if _, _, err := net.SplitHostPort(p); err == nil {
		return p
	}
	if strings.Count(p, ":") > 1 && !strings.HasPrefix(p, "[") {
		return "[" + p + "]:3260"
	}
	return p + ":3260"
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	// dottedAuthority: an iqn name's naming authority has a dot
	// (targetcli, which reads the saveconfig.json lunferry keeps, refuses
	// single labels).
	dottedAuthority = regexp.MustCompile(`^iqn\.[0-9]{4}-[0-9]{2}\.[^.:]+\.`)
)

// ValidIQN reports whether s is an iSCSI name lunferry accepts.
func ValidIQN(s string) bool { return iqnProblem(s) == "" }

// iqnProblem says what is wrong with the iSCSI name s ("" when nothing):
// LIO's rules (lio.ValidateIQN, which the export, its ACL and the kernel
// apply), and a dotted naming authority.
func iqnProblem(s string) string {
	if err := lio.ValidateIQN(s); err != nil {
		return strings.TrimPrefix(err.Error(), lio.ErrInvalidName.Error()+": ")
	}
	if strings.HasPrefix(s, "iqn.") && !dottedAuthority.MatchString(s) {
		return "the naming authority after the date needs a dot, e.g. iqn.1994-05.com.redhat:host1"
	}
	return ""
}

// Validate checks the spec alone (not against other volumes). Errors wrap
// ErrInvalidSpec and name the field to fix.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if !nameRE.MatchString(s.Name) {
		bad("name %q: use 1-32 characters a-z, 0-9, '-', starting with a letter or digit", s.Name)
	}
	s.Old.validate("old", bad)
	s.New.validate("new", bad)
	if s.Old.Portal == s.New.Portal && s.Old.IQN == s.New.IQN && s.Old.LUN == s.New.LUN && s.Old.IQN != "" {
		bad("old and new are the same LUN (%s %s lun %d): give the new array's LUN as new", s.Old.Portal, s.Old.IQN, s.Old.LUN)
	}
	if why := iqnProblem(s.HostIQN); why != "" {
		bad("hostIQN %q is not a valid iSCSI name (want e.g. iqn.1994-05.com.redhat:host1, as in the host's /etc/iscsi/initiatorname.iscsi): %s", s.HostIQN, why)
	}
	if why := iqnProblem(s.Export.IQN); why != "" {
		bad("export.iqn %q is not a valid iSCSI name: %s", s.Export.IQN, why)
	}
	if s.Export.IQN != "" && (s.Export.IQN == s.Old.IQN || s.Export.IQN == s.New.IQN) {
		bad("export.iqn %q must differ from the arrays' target names", s.Export.IQN)
	}
	if len(s.Export.Portals) == 0 {
		bad("export.portals: give at least one ip:port the host can reach")
	}
	for _, p := range s.Export.Portals {
		host, _, err := net.SplitHostPort(p)
		ip := net.ParseIP(strings.Trim(host, "[]"))
		switch {
		case err != nil || ip == nil:
			bad("export.portals %q: want ip:port", p)
		case ip.IsUnspecified() && !s.Export.AllowWildcardPortal:
			bad("export.portals %q listens on every address of the proxy, so on every network it is on: give the address the host reaches (e.g. 10.0.2.5:3260), or set \"allowWildcardPortal\": true in export if you mean it", p)
		}
	}
	s.Export.CHAP.validate("export.chap", true, bad)
	r := s.RegionSectors
	if r < 8 || r > 2097152 || r&(r-1) != 0 {
		bad("regionSectors %d: want a power of two from 8 to 2097152", r)
	}
	if e := s.EraBlockSectors; e != 0 && (e < 8 || e > 2097152 || e&(e-1) != 0) {
		bad("eraBlockSectors %d: want a power of two from 8 to 2097152 (or leave it out for %d)", e, DefaultEraBlockSectors)
	} else if e > r {
		bad("eraBlockSectors %d is larger than regionSectors %d: rollback copies whole era blocks back and needs each to lie in one clone region; use at most %d (or leave eraBlockSectors out)", e, r, r)
	}
	s.validateChoices(bad)
	s.validatePaths(bad)
	if len(errs) > 0 {
		return fmt.Errorf("%w: volume %q: %w", ErrInvalidSpec, s.Name, errors.Join(errs...))
	}
	return nil
}

// validateChoices reports the runbook's word choices and durations that
// lunferry does not know.
func (s *Spec) validateChoices(bad func(string, ...any)) {
	if s.Identity != "" && s.Identity != "old" && s.Identity != "new" {
		bad(`identity %q: want "old" (show the host the old LUN's identity) or "new"`, s.Identity)
	}
	if s.Reservations != "" && s.Reservations != "ignore" {
		bad(`reservations %q: leave it out (refuse an old LUN holding persistent reservations) or give "ignore"`, s.Reservations)
	}
	if s.Cutover != "" && s.Cutover != "offline" && s.Cutover != "online" {
		bad(`cutover %q: want "offline" (the default: the host stops for a window) or "online" (multipath hosts)`, s.Cutover)
	}
	if h := s.Hooks; s.Cutover == "online" && (len(h.AddPaths) == 0 || len(h.RemoveDirectPaths) == 0 || len(h.RestoreDirectPaths) == 0) {
		bad(`cutover "online" needs hooks addPaths, removeDirectPaths and restoreDirectPaths (they move the host's multipath paths)`)
	}
	if s.Thin != "" && s.Thin != "copy" {
		bad(`thin %q: leave it out (skip what a thin old LUN reports unmapped) or give "copy" (copy every region)`, s.Thin)
	}
	if s.Fence != "" && s.Fence != "none" {
		bad(`fence %q: leave it out (fence the old LUN with a persistent reservation) or give "none"`, s.Fence)
	}
	if d := s.StallAfter.D(); d != 0 && d < MinStallAfter {
		bad("stallAfter %s: want at least %s (or leave it out for %s)", d, MinStallAfter, DefaultStallAfter)
	}
}

// validatePaths reports paths that are not absolute: hooks run without a
// shell or a search path, and secrets and devices are read by a daemon
// whose working directory is not the admin's.
func (s *Spec) validatePaths(bad func(format string, args ...any)) {
	for _, ph := range s.Hooks.phases() {
		for i, p := range ph.paths {
			if !filepath.IsAbs(p) {
				bad("hooks.%s[%d] %q: give an absolute path", ph.field, i, p)
			}
		}
	}
	if d := s.Metadata.Device; d != "" && !filepath.IsAbs(d) {
		bad("metadata.device %q: give an absolute path (e.g. /dev/vg0/lunferry-meta)", d)
	}
	if d := s.Metadata.EraDevice; d != "" && (!filepath.IsAbs(d) || d == s.Metadata.Device) {
		bad("metadata.eraDevice %q: give an absolute path, not metadata.device's (e.g. /dev/vg0/lunferry-era)", d)
	}
}

// validate reports through bad what is wrong with l, the spec's field
// what ("old" or "new").
func (l LUN) validate(what string, bad func(format string, args ...any)) {
	if l.Portal == "" {
		bad("%s.portal is missing", what)
	} else if _, err := initiator.ParsePortal(l.Portal); err != nil {
		bad("%s.portal %q: want ip:port (addresses, not host names)", what, l.Portal)
	}
	if why := iqnProblem(l.IQN); why != "" {
		bad("%s.iqn %q is not a valid iSCSI name (want e.g. iqn.2001-05.com.example:array1): %s", what, l.IQN, why)
	}
	if l.LUN < 0 || l.LUN > 16383 {
		bad("%s.lun %d out of range 0-16383", what, l.LUN)
	}
	if l.SizeBytes%512 != 0 {
		bad("%s.sizeBytes %d is not a whole number of 512-byte sectors", what, uint64(l.SizeBytes))
	}
	l.CHAP.validate(what+".chap", false, bad)
	l.DiscoveryCHAP.validate(what+".discoveryChap", false, bad)
	l.SessionTimeouts.validate(what+".sessionTimeouts", bad)
}

// CHAP user names: what open-iscsi stores in a node record (the arrays'
// names) and what LIO stores in an ACL (the export's).
var (
	iscsiadmCHAPName = regexp.MustCompile(`^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]{0,253}[^\s\x00-\x1f\x7f])?$`)
	lioCHAPName      = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)
)

// validate reports through bad what is wrong with c, the spec's field
// field ("old.chap", "export.chap", ...); lio: the names go into LIO's ACL
// (the export), else into an open-iscsi record. nil is no CHAP.
func (c *CHAP) validate(field string, lio bool, bad func(format string, args ...any)) {
	if c == nil {
		return
	}
	if c.Username == "" || c.SecretFile == "" {
		bad("%s needs username and secretFile", field)
	}
	if (c.MutualUsername == "") != (c.MutualSecretFile == "") {
		bad("%s: mutualUsername and mutualSecretFile go together", field)
	}
	for _, n := range []struct{ key, v string }{{"username", c.Username}, {"mutualUsername", c.MutualUsername}} {
		switch {
		case n.v == "":
		case lio && (!lioCHAPName.MatchString(n.v) || n.v == "NULL"):
			bad("%s.%s %q: use 1-255 printable characters without spaces (not NULL)", field, n.key, n.v)
		case !lio && !iscsiadmCHAPName.MatchString(n.v):
			bad("%s.%s %q: use 1-255 characters without control characters or leading or trailing blanks", field, n.key, n.v)
		}
	}
	for _, f := range c.files() {
		if f.path != "" && !filepath.IsAbs(f.path) {
			bad("%s.%s %q: give an absolute path", field, f.key, f.path)
		}
	}
	if c.SecretFile != "" && c.SecretFile == c.MutualSecretFile {
		bad("%s: secretFile and mutualSecretFile are the same file: use a different secret for each direction", field)
	}
}

// files lists c's secret files by their runbook key.
func (c *CHAP) files() []struct{ key, path string } {
	return []struct{ key, path string }{{"secretFile", c.SecretFile}, {"mutualSecretFile", c.MutualSecretFile}}
}

// SameLUN reports whether a and b address the same logical unit through
// the same portal.
func SameLUN(a, b LUN) bool {
	return a.Portal == b.Portal && a.IQN == b.IQN && a.LUN == b.LUN
}

// SameLU reports whether a and b name the same logical unit, through any
// portal: an iSCSI target name is unique, and a target's LUN is the same
// device through each of its portals.
func SameLU(a, b LUN) bool {
	return strings.EqualFold(a.IQN, b.IQN) && a.LUN == b.LUN
}

// sameTarget reports whether a and b are behind the same target session.
func sameTarget(a, b LUN) bool {
	return a.Portal == b.Portal && a.IQN == b.IQN
}
