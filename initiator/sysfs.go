package initiator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lunferry/lunferry/internal/attr"
)

// Session is an iSCSI session as sysfs shows it under
// /sys/class/iscsi_session/sessionN.
type Session struct {
	// SID is the session number N.
	SID int
	// TargetIQN is the target name (targetname).
	TargetIQN string
	// Portal is the portal the session was made to, from its first
	// connection's persistent_address and persistent_port.
	Portal Portal
	// TPGT is the target portal group tag (tpgt).
	TPGT int
	// Iface is the open-iscsi iface the session uses (ifacename).
	Iface string
	// State is the session state (LOGGED_IN, FAILED or FREE).
	State string
	// RecoveryTimeout is the replacement timeout in force (recovery_tmo).
	RecoveryTimeout time.Duration
	// NoopOutInterval and NoopOutTimeout are the first connection's
	// recv_tmo and ping_tmo.
	NoopOutInterval, NoopOutTimeout time.Duration
}

// SessionLoggedIn is the State of a session that carries I/O; "FAILED"
// means the connection is lost and iscsid is recovering it (I/O queued
// for up to RecoveryTimeout), "FREE" that it is being torn down.
const SessionLoggedIn = "LOGGED_IN"

// LoggedIn reports whether the session carries I/O now.
func (s Session) LoggedIn() bool { return s.State == SessionLoggedIn }

// Node returns the node the session is logged in to.
func (s Session) Node() Node { return Node{TargetIQN: s.TargetIQN, Portal: s.Portal, TPGT: s.TPGT} }

// Disk is the block device of one LUN of a session.
type Disk struct {
	// Path is the device node, e.g. "/dev/sdb" (under the client's DevRoot).
	Path string
	// Name is the kernel name, e.g. "sdb".
	Name string
	// Size is the capacity in bytes.
	Size int64
	// LogicalBlockSize is the logical block size in bytes.
	LogicalBlockSize int
	// Major and Minor are the device numbers.
	Major, Minor uint32
	// HCTL is the SCSI address "host:channel:target:lun".
	HCTL string
	// ID is the logical unit's identity: its WWID (VPD page 0x83), else
	// "serial." and its unit serial number (VPD page 0x80), else empty.
	// Two disks with the same non-empty ID are the same LU.
	ID string
	// Cache is how the kernel sees the disk's cache.
	Cache Cache
}

// Cache is how the kernel sees a disk's cache, from what the logical unit
// reports: a volatile write cache (MODE SENSE caching page WCE=1; the
// block layer sends flushes) and FUA (DPOFUA; writes may carry Force Unit
// Access), from the disk's queue/write_cache ("write back" or "write
// through") and queue/fua ("1" or "0").
type Cache struct {
	WriteBack bool
	FUA       bool
}

func (c *Client) sessionClassDir() string { return filepath.Join(c.sysRoot, "class", "iscsi_session") }

// Sessions returns every iSCSI session on the system (of any iface),
// ordered by SID. No session is not an error.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	ents, err := os.ReadDir(c.sessionClassDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("initiator: list sessions: %w", err)
	}
	var out []Session
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sid, ok := strings.CutPrefix(e.Name(), "session")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(sid)
		if err != nil {
			continue
		}
		s, err := c.readSession(n)
		if errors.Is(err, fs.ErrNotExist) {
			continue // logged out while we looked
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SID < out[j].SID })
	return out, nil
}

func (c *Client) readSession(sid int) (Session, error) {
	t, err := readAttr(c.sessionDir(sid), "targetname")
	if err != nil {
		return Session{SID: sid}, err
	}
	return c.readSessionOf(sid, t)
}

func (c *Client) sessionDir(sid int) string {
	return filepath.Join(c.sessionClassDir(), "session"+strconv.Itoa(sid))
}

// readSessionOf reads session sid, whose target name was read already: an
// error wrapping fs.ErrNotExist when it went meanwhile.
func (c *Client) readSessionOf(sid int, target string) (Session, error) {
	dir := c.sessionDir(sid)
	s := Session{SID: sid, TargetIQN: target}
	var err error
	if s.State, err = readAttr(dir, "state"); errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	s.Iface, _ = readAttr(dir, "ifacename")
	if v, err := readAttr(dir, "tpgt"); err == nil {
		s.TPGT, _ = strconv.Atoi(v)
	}
	if v, err := readAttr(dir, "recovery_tmo"); err == nil {
		if n, err := strconv.Atoi(v); err == nil {
			s.RecoveryTimeout = time.Duration(n) * time.Second
		}
	}
	// device/connectionN:M/iscsi_connection/connectionN:M/, the first
	// connection's: open-iscsi makes one, M = 0, read without listing
	// the three directories on the way; any other is found by a glob.
	cd := connectionDir(sid, dir)
	if cd != "" {
		addr, _ := readAttr(cd, "persistent_address")
		port, _ := readAttr(cd, "persistent_port")
		if a, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
			s.Portal.Addr = a.Unmap()
		}
		if p, err := strconv.ParseUint(port, 10, 16); err == nil {
			s.Portal.Port = uint16(p)
		}
		if v, err := readAttr(cd, "recv_tmo"); err == nil {
			if n, err := strconv.Atoi(v); err == nil {
				s.NoopOutInterval = time.Duration(n) * time.Second
			}
		}
		if v, err := readAttr(cd, "ping_tmo"); err == nil {
			if n, err := strconv.Atoi(v); err == nil {
				s.NoopOutTimeout = time.Duration(n) * time.Second
			}
		}
	}
	return s, nil
}

// connectionDir returns the sysfs directory of session sid's first
// connection (dir is the session's), "" when it has none.
func connectionDir(sid int, dir string) string {
	conn := "connection" + strconv.Itoa(sid) + ":0"
	cd := filepath.Join(dir, "device", conn, "iscsi_connection", conn)
	if _, err := os.Lstat(cd); err == nil {
		return cd
	}
	conns, _ := filepath.Glob(filepath.Join(dir, "device", "connection*", "iscsi_connection", "connection*"))
	sort.Strings(conns)
	if len(conns) == 0 {
		return ""
	}
	return conns[0]
}

func readAttr(dir, name string) (string, error) {
	b, err := attr.Read(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// SessionTo returns the client's session to n as sysfs shows it now (its
// state and the timeouts in force); ok is false when there is none.
func (c *Client) SessionTo(ctx context.Context, n Node) (s Session, ok bool, err error) {
	return c.SessionView().SessionTo(n)
}

// findSession returns the client's session to n, nil if there is none.
func (c *Client) findSession(n Node) (*Session, error) {
	s, ok, err := c.SessionView().SessionTo(n)
	if err != nil || !ok {
		return nil, err
	}
	return &s, nil
}

// SessionView is the client's sessions as one look at sysfs finds them,
// for a pass of lookups over many volumes (one `migrate status`): the
// session list and each session's target name are read once, at the
// first lookup, and the other attributes only of sessions a lookup's
// target matches, once each. It does not see logins and logouts after
// its first lookup: make one per pass, never keep one. It is not safe
// for concurrent use.
type SessionView struct {
	c *Client
	// targets maps a session id to its target name, nil until listed.
	targets map[int]string
	// read holds the sessions read in full (nil: gone meanwhile).
	read map[int]*Session
	err  error
}

// SessionView returns a view of the client's sessions, read at its first
// lookup.
func (c *Client) SessionView() *SessionView { return &SessionView{c: c} }

// list reads the session ids and their target names.
func (v *SessionView) list() error {
	if v.targets != nil || v.err != nil {
		return v.err
	}
	v.targets, v.read = map[int]string{}, map[int]*Session{}
	dir := v.c.sessionClassDir()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		v.err = fmt.Errorf("initiator: list sessions: %w", err)
		return v.err
	}
	for _, e := range ents {
		sid, ok := strings.CutPrefix(e.Name(), "session")
		id, err := strconv.Atoi(sid)
		if !ok || err != nil {
			continue
		}
		if t, err := readAttr(filepath.Join(dir, e.Name()), "targetname"); err == nil {
			v.targets[id] = t
		} // else logged out while we looked
	}
	return nil
}

// SessionTo returns the client's session to n (the lowest session id
// among matching ones, as Sessions lists them); ok is false when there is
// none. It reads the attributes of other targets' sessions not at all:
// status and run ask this for every volume's arrays, and a proxy holds
// many sessions.
func (v *SessionView) SessionTo(n Node) (s Session, ok bool, err error) {
	if err := v.list(); err != nil {
		return Session{}, false, err
	}
	var found *Session
	for id, t := range v.targets {
		if !strings.EqualFold(t, n.TargetIQN) || found != nil && found.SID < id {
			continue
		}
		p, err := v.session(id)
		if err != nil {
			return Session{}, false, err
		}
		if p != nil && v.c.matches(*p, n) {
			found = p
		}
	}
	if found == nil {
		return Session{}, false, nil
	}
	return *found, true, nil
}

// session reads session id in full, once; nil when it went meanwhile.
func (v *SessionView) session(id int) (*Session, error) {
	if p, ok := v.read[id]; ok {
		return p, nil
	}
	s, err := v.c.readSessionOf(id, v.targets[id])
	if errors.Is(err, fs.ErrNotExist) {
		v.read[id] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v.read[id] = &s
	return &s, nil
}

// matches reports whether s is the client's session to n: same target,
// same portal, same portal group (when n's is known) and the client's iface
// (a session without ifacename matches any iface).
func (c *Client) matches(s Session, n Node) bool {
	return strings.EqualFold(s.TargetIQN, n.TargetIQN) &&
		s.Portal.Equal(n.Portal) &&
		(n.TPGT == 0 || s.TPGT == n.TPGT) &&
		(s.Iface == "" || s.Iface == c.iface)
}

// FindDisk returns the block device of LUN lun of the client's session to
// n. The SCSI scan runs after login returns (the disk appears 0.1–0.5 s
// later), so FindDisk polls until timeout (10 s if zero); halfway (or at
// the deadline at the latest) it asks once for a rescan, for LUNs mapped
// after login, and looks once more. The device node under
// DevRoot is created when missing (no udev) and checked when present.
// Errors: ErrNoSession when there is no session, ErrDiskNotFound when the
// LUN does not appear in time.
func (c *Client) FindDisk(ctx context.Context, n Node, lun uint64, timeout time.Duration) (Disk, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	rescanAt := time.Now().Add(timeout / 2)
	rescanned := false
	for {
		s, err := c.findSession(n)
		if err != nil {
			return Disk{}, err
		}
		if s == nil {
			return Disk{}, fmt.Errorf("initiator: find disk: %w %s on iface %s: log in first", ErrNoSession, n, c.iface)
		}
		d, found, err := c.diskOf(s.SID, lun)
		if err != nil {
			return Disk{}, err
		}
		if found {
			if err := ensureDevNode(d.Path, d.Major, d.Minor); err != nil {
				return Disk{}, fmt.Errorf("initiator: find disk %s lun %d: %w", n, lun, err)
			}
			return d, nil
		}
		now := time.Now()
		if now.After(deadline) && !rescanned {
			// Always rescan once before giving up, even when a slow
			// first look used up the whole timeout.
			rescanAt = now
		}
		if now.After(deadline) && rescanned {
			return Disk{}, fmt.Errorf("initiator: LUN %d of %s (session %d): %w within %s: check that the target maps LUN %d to this initiator (iscsiadm -m session -r %d -P 3 lists the attached disks)",
				lun, n, s.SID, ErrDiskNotFound, timeout, lun, s.SID)
		}
		if !rescanned && !now.Before(rescanAt) {
			rescanned = true
			if err := c.Rescan(ctx, s.Node()); err != nil {
				c.log.Warn("rescan failed", "node", n.String(), "err", err)
			}
			if now.After(deadline) {
				continue // one last look after the rescan
			}
		}
		select {
		case <-ctx.Done():
			return Disk{}, fmt.Errorf("initiator: find disk %s lun %d: %w", n, lun, ctx.Err())
		case <-time.After(c.pollInterval):
		}
	}
}

// diskOf looks for the disk of LUN lun in session sid:
// sessionN/device/target<H>:<C>:<T>/<H>:<C>:<T>:<L>/block/<name>, its
// identity in the <H>:<C>:<T>:<L> directory. A disk whose size is still 0
// (capacity not read yet) is not found yet.
func (c *Client) diskOf(sid int, lun uint64) (Disk, bool, error) {
	dev := filepath.Join(c.sessionClassDir(), "session"+strconv.Itoa(sid), "device")
	luns, err := filepath.Glob(filepath.Join(dev, "target*", "*:*:*:"+strconv.FormatUint(lun, 10)))
	if err != nil {
		return Disk{}, false, err
	}
	sort.Strings(luns)
	for _, l := range luns {
		hctl := filepath.Base(l)
		if parts := strings.Split(hctl, ":"); len(parts) != 4 || parts[3] != strconv.FormatUint(lun, 10) {
			continue
		}
		blocks, err := os.ReadDir(filepath.Join(l, "block"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Disk{}, false, fmt.Errorf("initiator: read %s: %w", l, err)
		}
		for _, b := range blocks {
			d, ok, err := c.readDisk(filepath.Join(l, "block", b.Name()))
			if err != nil || !ok {
				return Disk{}, false, err
			}
			d.HCTL = hctl
			d.ID = lunID(l)
			return d, true, nil
		}
	}
	return Disk{}, false, nil
}

// readDisk reads a disk's attributes from its sysfs block directory: dev
// ("major:minor"), size (512-byte sectors whatever the block size) and
// queue/logical_block_size.
func (c *Client) readDisk(dir string) (Disk, bool, error) {
	name := filepath.Base(dir)
	d := Disk{Name: name, Path: filepath.Join(c.devRoot, name)}
	devnum, err := readAttr(dir, "dev")
	if errors.Is(err, fs.ErrNotExist) {
		return d, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("initiator: disk %s: %w", name, err)
	}
	ma, mi, ok := strings.Cut(devnum, ":")
	major, err1 := strconv.ParseUint(ma, 10, 32)
	minor, err2 := strconv.ParseUint(mi, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return d, false, fmt.Errorf("initiator: disk %s: bad dev %q", name, devnum)
	}
	d.Major, d.Minor = uint32(major), uint32(minor)
	size, err := readAttr(dir, "size")
	if err != nil {
		return d, false, nil
	}
	sectors, err := strconv.ParseInt(size, 10, 64)
	if err != nil {
		return d, false, fmt.Errorf("initiator: disk %s: bad size %q", name, size)
	}
	if sectors == 0 {
		return d, false, nil
	}
	d.Size = sectors * 512
	lbs, err := readAttr(filepath.Join(dir, "queue"), "logical_block_size")
	if err != nil {
		return d, false, nil
	}
	if d.LogicalBlockSize, err = strconv.Atoi(lbs); err != nil || d.LogicalBlockSize <= 0 {
		return d, false, fmt.Errorf("initiator: disk %s: bad logical_block_size %q", name, lbs)
	}
	// Read from the disk's own directory, not /sys/block/<name>: right
	// after a login a disk's attributes there were seen missing (the bench
	// met ENOENT for write_cache of a disk it had just found). Not there
	// yet is not found yet.
	wc, err := readAttr(filepath.Join(dir, "queue"), "write_cache")
	if err != nil {
		return d, false, nil
	}
	fua, err := readAttr(filepath.Join(dir, "queue"), "fua")
	if err != nil {
		return d, false, nil
	}
	d.Cache = Cache{WriteBack: wc == "write back", FUA: fua == "1"}
	return d, true, nil
}
