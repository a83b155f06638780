package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// HostPathProperty is the udev property the lab's rule sets on a SCSI disk
// whose iSCSI session carries the host's initiator name. multipathd is told
// to consider only disks that have it: in the one-kernel lab the proxy's own
// session to the old LUN shows the same WWID as the host's direct path, and
// must never join the host's map.
const HostPathProperty = "LUNFERRY_LAB_HOST_PATH"

// Multipath is the lab host's dm-multipath: systemd-udevd and multipathd
// started in the lab VM, each seeing only the host's own paths.
//
// udevd runs with the lab's rules directory bind-mounted over the system's,
// so it does nothing but tag the host's disks (the proxy's disks and dm
// devices stay as udev-less as the rest of the lab); multipathd reads a
// multipath.conf that blacklists every disk without HostPathProperty and
// runs with DM_DISABLE_UDEV=1 (no dm rules answer libdevmapper's udev
// cookies).
type Multipath struct {
	// Dir keeps multipath.conf, the udev rules and the daemons' logs.
	Dir string
	// HostIQN is the host's initiator name: only disks behind its
	// sessions are multipathed.
	HostIQN string
	// RulesDir is the system's udev rules directory the lab's is mounted
	// over (empty: /usr/lib/udev/rules.d).
	RulesDir string
	// ConfFile is where multipathd reads its configuration (empty:
	// /etc/multipath.conf, which multipathd has no option to move).
	ConfFile string
}

// Multipath returns the host's dm-multipath of this scene, kept under
// Dir/multipath.
func (c *Config) Multipath() *Multipath {
	return &Multipath{Dir: filepath.Join(c.Dir, "multipath"), HostIQN: c.Host.IQN}
}

func (m *Multipath) rulesDir() string {
	if m.RulesDir == "" {
		return "/usr/lib/udev/rules.d"
	}
	return m.RulesDir
}

func (m *Multipath) confFile() string {
	if m.ConfFile == "" {
		return "/etc/multipath.conf"
	}
	return m.ConfFile
}

// multipathEnv is the environment of multipathd and multipath: no udev
// synchronisation in libdevmapper (no dm rules run in the lab).
func multipathEnv() []string { return append(os.Environ(), "DM_DISABLE_UDEV=1") }

// Conf renders multipath.conf: maps named by WWID, a single path enough for
// a map (the host starts on one direct path), every path of a map used
// (multibus: the proxied path carries I/O as soon as it joins), I/O queued
// while a map has no path, and every disk blacklisted unless it carries
// HostPathProperty.
func (m *Multipath) Conf() string {
	return `# lunferry lab: the host's dm-multipath (integration/lab/multipath.go)
defaults {
	user_friendly_names no
	find_multipaths no
	polling_interval 2
	enable_foreign "^$"
}
overrides {
	path_grouping_policy multibus
	no_path_retry queue
}
blacklist_exceptions {
	property "^` + HostPathProperty + `$"
}
`
}

// Rules renders the lab's udev rules: a disk whose session belongs to the
// host gets HostPathProperty and the scsi_id properties (multipathd takes
// its WWID from ID_SERIAL); every other SCSI disk gets only an ID_SERIAL
// of its own ("lunferry-lab-not-host-sdX"); nothing else happens to any
// device. Why, as multipath-tools 0.9.4 behaves: it applies a property
// blacklist only to a device that has its uid attribute (without ID_SERIAL
// it reads the WWID from sysfs and takes the disk); its built-in exception
// (SCSI_IDENT_|ID_WWN), unanchored, which multipath.conf cannot remove,
// admits every disk with any ID_WWN* property (scsi_id sets three); and a
// blacklisted disk it keeps as an orphan is still adopted into a map of
// the same WWID when that map gains a path.
func (m *Multipath) Rules() string {
	return `# lunferry lab: tag the host's iSCSI disks for its multipathd (integration/lab/multipath.go)
SUBSYSTEM!="block", GOTO="lunferry_lab_end"
KERNEL!="sd*", GOTO="lunferry_lab_end"
ENV{DEVTYPE}!="disk", GOTO="lunferry_lab_end"
ACTION=="remove", GOTO="lunferry_lab_end"
IMPORT{program}="/bin/sh ` + m.hostPathScript() + ` %p"
ENV{` + HostPathProperty + `}!="1", ENV{ID_SERIAL}="lunferry-lab-not-host-%k", GOTO="lunferry_lab_end"
IMPORT{program}="scsi_id --whitelisted --export --device=$devnode"
LABEL="lunferry_lab_end"
`
}

func (m *Multipath) hostPathScript() string { return filepath.Join(m.Dir, "host-path") }

// HostPathScript renders the program the udev rule runs with a disk's
// devpath: it walks up to the disk's iSCSI session and prints
// HostPathProperty=1 when the session's initiator name is the host's
// (sysfs is $LUNFERRY_LAB_SYSFS, default /sys: udev sets no such thing).
func (m *Multipath) HostPathScript() string {
	return `#!/bin/sh
# lunferry lab: is disk $1 (a devpath) behind an iSCSI session of the host?
sys=${LUNFERRY_LAB_SYSFS:-/sys}
d=$sys$1
while [ "$d" != "$sys" ] && [ -n "$d" ]; do
	for f in "$d"/iscsi_session/session*/initiatorname; do
		if [ -r "$f" ] && [ "$(cat "$f")" = "` + m.HostIQN + `" ]; then
			echo ` + HostPathProperty + `=1
			exit 0
		fi
	done
	d=${d%/*}
done
exit 0
`
}

// Start writes the configuration and starts udevd and multipathd (each
// only if not running already), then replays the block devices' add
// events so that disks present before are tagged. Lab VM only: it writes
// /etc/multipath.conf and mounts over the system's udev rules.
func (m *Multipath) Start() error {
	if os.Getenv("LUNFERRY_IN_VM") != "1" {
		return errors.New("lab: multipath: starts only in the lab VM (it replaces the udev rules and /etc/multipath.conf)")
	}
	if strings.ContainsAny(m.Dir, " \"'\\") || m.HostIQN == "" {
		return fmt.Errorf("lab: multipath: dir %q must have no spaces or quotes, and the host IQN is required", m.Dir)
	}
	rules := filepath.Join(m.Dir, "rules.d")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		return fmt.Errorf("lab: multipath: %w", err)
	}
	files := []struct{ path, body string }{
		{m.hostPathScript(), m.HostPathScript()},
		{filepath.Join(rules, "59-lunferry-lab-host.rules"), m.Rules()},
		{m.confFile(), m.Conf()},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, []byte(f.body), 0o755); err != nil {
			return fmt.Errorf("lab: multipath: %w", err)
		}
	}
	if err := run("modprobe", "-a", "dm_multipath", "dm_round_robin"); err != nil {
		return err
	}
	if !m.rulesMounted() {
		if err := run("mount", "--bind", rules, m.rulesDir()); err != nil {
			return err
		}
	}
	if err := m.startUdevd(); err != nil {
		return err
	}
	if err := m.startMultipathd(); err != nil {
		return err
	}
	if err := run("udevadm", "trigger", "--action=add", "--subsystem-match=block"); err != nil {
		return err
	}
	return run("udevadm", "settle", "--timeout=60")
}

func (m *Multipath) rulesMounted() bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == m.rulesDir() {
			return true
		}
	}
	return false
}

func udevdUp() bool { return exec.Command("udevadm", "control", "--ping", "--timeout=5").Run() == nil }

func (m *Multipath) startUdevd() error {
	if udevdUp() {
		return run("udevadm", "control", "--reload")
	}
	if err := run("/lib/systemd/systemd-udevd", "--daemon"); err != nil {
		return err
	}
	// It answers only once it has read its rules: seconds under TCG.
	for deadline := time.Now().Add(60 * time.Second); !udevdUp(); {
		if time.Now().After(deadline) {
			return errors.New("lab: multipath: systemd-udevd does not answer after 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

func (m *Multipath) startMultipathd() error {
	if m.daemonUp() {
		return run("multipathd", "reconfigure")
	}
	log, err := os.OpenFile(filepath.Join(m.Dir, "multipathd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: multipath: %w", err)
	}
	defer log.Close()
	cmd := exec.Command("multipathd", "-d", "-s", "-v3")
	cmd.Env = multipathEnv()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: multipath: start multipathd: %w", err)
	}
	go cmd.Wait() //nolint:errcheck // reaped if we live long enough; init reaps otherwise
	deadline := time.Now().Add(60 * time.Second)
	for !m.daemonUp() {
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: multipath: multipathd not running after 60s (see %s)", log.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// daemonUp reports whether multipathd answers and has finished starting
// (`show daemon`: "pid N idle" or "pid N running").
func (m *Multipath) daemonUp() bool {
	out, err := exec.Command("multipathd", "show", "daemon").CombinedOutput()
	return err == nil && (strings.Contains(string(out), " idle") || strings.Contains(string(out), " running"))
}

// Stop shuts multipathd down, removes every multipath map nobody holds
// open, stops udevd and unmounts the lab's rules. Nothing running is fine.
func (m *Multipath) Stop() error {
	var errs []error
	if m.daemonUp() {
		// It may exit before it answers ("error -5 receiving packet").
		err := run("multipathd", "shutdown")
		for deadline := time.Now().Add(30 * time.Second); m.daemonUp() && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
		}
		if m.daemonUp() {
			errs = append(errs, fmt.Errorf("lab: multipathd still running 30s after shutdown (%v)", err))
		}
	}
	if out, err := m.multipath("-F"); err != nil {
		errs = append(errs, fmt.Errorf("lab: multipath -F: %w: %s", err, out))
	}
	if udevdUp() {
		if err := run("udevadm", "control", "--exit"); err != nil {
			errs = append(errs, err)
		}
	}
	if m.rulesMounted() {
		if err := run("umount", m.rulesDir()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Multipath) multipath(args ...string) (string, error) {
	cmd := exec.Command("multipath", args...)
	cmd.Env = multipathEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Map is one multipath map as sysfs shows it.
type Map struct {
	// Name is the map's dm name (its WWID: user_friendly_names no).
	Name string
	// Dev is its node, /dev/dm-N.
	Dev string
	// Paths are the disks under it (sdX), sorted.
	Paths []string
}

// Maps lists the multipath maps (dm devices whose uuid starts "mpath-")
// from /sys/block/dm-N/{dm/uuid,dm/name,slaves}.
func Maps(sysRoot string) ([]Map, error) {
	uuids, err := filepath.Glob(filepath.Join(sysRoot, "block", "dm-*", "dm", "uuid"))
	if err != nil {
		return nil, fmt.Errorf("lab: multipath: %w", err)
	}
	var out []Map
	for _, u := range uuids {
		b, _ := os.ReadFile(u)
		if !strings.HasPrefix(string(b), "mpath-") {
			continue
		}
		dmDir := filepath.Dir(u)
		blk := filepath.Dir(dmDir)
		name, _ := os.ReadFile(filepath.Join(dmDir, "name"))
		mp := Map{Name: strings.TrimSpace(string(name)), Dev: "/dev/" + filepath.Base(blk)}
		slaves, _ := os.ReadDir(filepath.Join(blk, "slaves"))
		for _, s := range slaves {
			mp.Paths = append(mp.Paths, s.Name())
		}
		slices.Sort(mp.Paths)
		out = append(out, mp)
	}
	return out, nil
}

// MapOf returns the map that holds disk (sdX) as a path.
func MapOf(sysRoot, disk string) (Map, bool, error) {
	maps, err := Maps(sysRoot)
	if err != nil {
		return Map{}, false, err
	}
	for _, mp := range maps {
		if slices.Contains(mp.Paths, disk) {
			return mp, true, nil
		}
	}
	return Map{}, false, nil
}

// PathState is one path as multipathd shows it.
type PathState struct {
	// Dev is the disk (sdX); Map the map it is in ("[orphan]" when none).
	Dev, Map string
	// DM is the path's state in the kernel's map (active, failed);
	// Checker multipathd's checker verdict (ready, faulty, ghost, ...).
	DM, Checker string
}

// Serving reports whether I/O of the map can go down this path.
func (p PathState) Serving() bool { return p.DM == "active" && p.Checker == "ready" }

// ParsePaths parses `multipathd show paths raw format "%d %m %t %T"`
// (one path a line: device, map, dm state, checker state).
func ParsePaths(out string) []PathState {
	var ps []PathState
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[0] == "dev" {
			continue
		}
		ps = append(ps, PathState{Dev: f[0], Map: f[1], DM: f[2], Checker: strings.Join(f[3:], " ")})
	}
	return ps
}

// Paths returns the paths multipathd monitors.
func (m *Multipath) Paths() ([]PathState, error) {
	out, err := exec.Command("multipathd", "show", "paths", "raw", "format", "%d %m %t %T").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("lab: multipathd show paths: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return ParsePaths(string(out)), nil
}

// Path returns multipathd's view of disk.
func (m *Multipath) Path(disk string) (PathState, bool, error) {
	ps, err := m.Paths()
	if err != nil {
		return PathState{}, false, err
	}
	for _, p := range ps {
		if p.Dev == disk {
			return p, true, nil
		}
	}
	return PathState{}, false, nil
}

// DelPath makes multipathd drop disk from its map (the map is reloaded
// without it; I/O in flight on it completes).
func (m *Multipath) DelPath(disk string) error {
	return run("multipathd", "del", "path", disk)
}

// AddPath makes multipathd add disk to its map now rather than on its
// uevent; a path already known is fine.
func (m *Multipath) AddPath(disk string) error {
	if _, ok, err := m.Path(disk); err != nil || ok {
		return err
	}
	return run("multipathd", "add", "path", disk)
}

// Show returns `multipath -ll` (for logs).
func (m *Multipath) Show() string {
	out, err := m.multipath("-ll")
	if err != nil {
		return out + err.Error()
	}
	return out
}
