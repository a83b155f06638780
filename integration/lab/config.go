package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config describes one lab scene: the arrays, the host and where the lab
// keeps its own records. It is saved as JSON so that the hooks lunferry
// runs (separate processes) act on the same scene; they find it through
// the environment variable EnvConfig.
type Config struct {
	// Dir keeps the manifest, the writer's pid, stats and log. For a
	// multi-boot scenario it must be on storage that survives the power
	// cut.
	Dir string `json:"dir"`
	// Arrays are the fake SAN arrays, by role ("old", "new", ...).
	Arrays map[string]*Array `json:"arrays"`
	// Host is the application host.
	Host Host `json:"host"`
	// ProxyIQN is the proxy's initiator name (the guest's
	// /etc/iscsi/initiatorname.iscsi).
	ProxyIQN string `json:"proxyIQN"`
	// ExportIQN and ExportPortal are the proxy's export for the host;
	// hooks take them from LUNFERRY_EXPORT_IQN/LUNFERRY_EXPORT_PORTAL
	// when lunferry sets them.
	ExportIQN    string `json:"exportIQN,omitempty"`
	ExportPortal string `json:"exportPortal,omitempty"`
	// Seed makes the files' content deterministic.
	Seed uint64 `json:"seed"`
}

// EnvConfig names the environment variable that holds the lab config's
// path for the lab command and the hooks.
const EnvConfig = "LUNFERRY_LAB_CONFIG"

// LoadConfig reads a config file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab: config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("lab: config %s: %w", path, err)
	}
	if c.Dir == "" || c.Host.Iface == "" || c.Host.IQN == "" || c.Host.Mount == "" {
		return nil, fmt.Errorf("lab: config %s: dir, host.iface, host.iqn and host.mount are required", path)
	}
	return &c, nil
}

// Save writes the config to path.
func (c *Config) Save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	// Durable: the config is the arrays' state (remapped ACLs), which a
	// multi-boot test brings back after a power cut.
	if err := WriteDurable(path, append(b, '\n')); err != nil {
		return fmt.Errorf("lab: config: %w", err)
	}
	return nil
}

// Array returns the array of a role, given by name ("old") or by target
// IQN (what hooks get in LUNFERRY_OLD_IQN).
func (c *Config) Array(role string) (*Array, error) {
	if a, ok := c.Arrays[role]; ok {
		return a, nil
	}
	for _, a := range c.Arrays {
		if a.IQN == role {
			return a, nil
		}
	}
	return nil, fmt.Errorf("lab: no array %q in the config", role)
}

// ResolveIQN maps the words "host" and "proxy" to the configured initiator
// names; anything else is returned as is.
func (c *Config) ResolveIQN(s string) string {
	switch s {
	case "host":
		return c.Host.IQN
	case "proxy":
		return c.ProxyIQN
	}
	return s
}

// Manifest is the path of the host's manifest.
func (c *Config) Manifest() string { return filepath.Join(c.Dir, "manifest.txt") }

func (c *Config) pidFile() string { return filepath.Join(c.Dir, "writer.pid") }

// StatsFile is the stats file of a writer session.
func (c *Config) StatsFile(session int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("writer-%d.json", session))
}

// Sessions lists the writer sessions that left a stats file, ascending.
func (c *Config) Sessions() []int {
	files, _ := filepath.Glob(filepath.Join(c.Dir, "writer-*.json"))
	var out []int
	for _, f := range files {
		s := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "writer-"), ".json")
		if n, err := strconv.Atoi(s); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// AllStats sums every writer session's stats (Session = number of
// sessions).
func (c *Config) AllStats() (WriterStats, error) {
	var sum WriterStats
	for _, n := range c.Sessions() {
		st, err := LoadStats(c.StatsFile(n))
		if err != nil {
			return sum, err
		}
		sum.Session++
		sum.Files += st.Files
		sum.Rewrites += st.Rewrites
		sum.Bytes += st.Bytes
		sum.Readbacks += st.Readbacks
		sum.Errors += st.Errors
		sum.Mismatches += st.Mismatches
		if st.MaxWriteMs > sum.MaxWriteMs {
			sum.MaxWriteMs, sum.MaxWriteAt = st.MaxWriteMs, st.MaxWriteAt
		}
		if st.MaxReadMs > sum.MaxReadMs {
			sum.MaxReadMs, sum.MaxReadAt = st.MaxReadMs, st.MaxReadAt
		}
		if st.LastError != "" {
			sum.LastError = fmt.Sprintf("session %d: %s", n, st.LastError)
		}
	}
	return sum, nil
}

// StartWriter starts `self writer run` in the background (own session,
// output to Dir/writer-N.log) for the next session number and waits until
// it has saved its first stats. self is the lab command's path.
func (c *Config) StartWriter(self, configPath string, runArgs ...string) (int, error) {
	if pid := c.writerPid(); pid > 0 {
		return 0, fmt.Errorf("lab: writer already running (pid %d)", pid)
	}
	session := 1
	if s := c.Sessions(); len(s) > 0 {
		session = s[len(s)-1] + 1
	}
	log, err := os.OpenFile(filepath.Join(c.Dir, fmt.Sprintf("writer-%d.log", session)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("lab: writer: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(self, append([]string{"-config", configPath, "writer", "run", "-session", strconv.Itoa(session)}, runArgs...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("lab: writer: %w", err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() //nolint:errcheck // reaped if we live long enough; init reaps otherwise
	if err := c.recordWriter(pid); err != nil {
		b, _ := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("writer-%d.log", session)))
		return 0, fmt.Errorf("lab: writer session %d did not start: %w: %s", session, err, strings.TrimSpace(string(b)))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(c.StatsFile(session)); err == nil {
			return session, nil
		}
		if c.writerPid() != pid || time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("writer-%d.log", session)))
			return 0, fmt.Errorf("lab: writer session %d did not start: %s", session, strings.TrimSpace(string(b)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recordWriter saves pid with its boot and start time: the file outlives
// a reboot (the power-cut tests), and after one the pid may belong to
// another process, which must be neither refused over nor signalled.
func (c *Config) recordWriter(pid int) error {
	start, ok := startTime(pid)
	if !ok {
		return fmt.Errorf("writer %d exited at once", pid)
	}
	return os.WriteFile(c.pidFile(), []byte(fmt.Sprintf("%d %s %s\n", pid, bootID(), start)), 0o644)
}

// writerPid is the recorded writer's pid while that very process runs
// (same boot, same start time, not a zombie), else 0.
func (c *Config) writerPid() int {
	b, err := os.ReadFile(c.pidFile())
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[1] != bootID() {
		return 0
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0
	}
	if start, ok := startTime(pid); !ok || start != f[2] {
		return 0
	}
	return pid
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// startTime is field 22 of /proc/PID/stat (clock ticks after boot); ok is
// false when pid does not run or is a zombie.
func startTime(pid int) (string, bool) {
	f, err := ProcStat(pid)
	if err != nil || len(f) < 20 || f[0] == "Z" {
		return "", false
	}
	return f[19], true
}

// ProcStat returns the fields of /proc/PID/stat after the command name,
// the first being field 3 (the state): the name may hold spaces and
// parentheses, so it is cut at the last ')'.
func ProcStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("lab: /proc/%d/stat: %q", pid, s)
	}
	return strings.Fields(s[i+1:]), nil
}

// StopWriter stops the running writer (SIGTERM), waits for its final
// stats and returns them. No writer running is not an error (zero stats,
// false).
func (c *Config) StopWriter() (WriterStats, bool, error) {
	pid := c.writerPid()
	if pid <= 0 {
		os.Remove(c.pidFile())
		return WriterStats{}, false, nil
	}
	sessions := c.Sessions()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return WriterStats{}, false, fmt.Errorf("lab: stop writer %d: %w", pid, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for c.writerPid() == pid {
		if time.Now().After(deadline) {
			return WriterStats{}, false, fmt.Errorf("lab: writer %d did not stop within 60s", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.Remove(c.pidFile())
	if len(sessions) == 0 {
		return WriterStats{}, false, fmt.Errorf("lab: writer %d stopped without stats", pid)
	}
	st, err := LoadStats(c.StatsFile(sessions[len(sessions)-1]))
	if err == nil && st.Stopped.IsZero() {
		err = fmt.Errorf("lab: writer session %d ended without its final stats (killed?)", st.Session)
	}
	return st, true, err
}

// Lab topology defaults: everything on loopback in one guest.
const (
	OldIQN       = "iqn.2026-11.io.lunferry.lab:old-array"
	NewIQN       = "iqn.2026-11.io.lunferry.lab:new-array"
	OldPortal    = "127.0.0.1:3260"
	NewPortal    = "127.0.0.2:3260"
	ExportPortal = "127.0.0.3:3260"
	HostIQN      = "iqn.2026-11.io.lunferry.lab:host"
	HostIface    = "labhost"
	// ExportIQN is the target name the lab gives lunferry's export.
	ExportIQN = "iqn.2026-11.io.lunferry.lab:proxy-export"
)

// DefaultConfig returns the lab topology: the old array at OldPortal over
// oldBacking admitting the host, the new array at NewPortal over
// newBacking admitting the proxy, the host on iface labhost with its fs
// at <dir>/mnt. Sizes apply to file backing stores.
func DefaultConfig(dir, oldBacking string, oldSize int64, newBacking string, newSize int64) *Config {
	return &Config{
		Dir: dir,
		Arrays: map[string]*Array{
			"old": {Name: "old", IQN: OldIQN, Portals: []string{OldPortal}, Backing: oldBacking, SizeBytes: oldSize, ACLs: []string{HostIQN}, HBAIndex: RandomHBAIndex()},
			"new": {Name: "new", IQN: NewIQN, Portals: []string{NewPortal}, Backing: newBacking, SizeBytes: newSize, ACLs: []string{ProxyInitiatorName()}, HBAIndex: RandomHBAIndex()},
		},
		Host:         Host{Iface: HostIface, IQN: HostIQN, Mount: filepath.Join(dir, "mnt")},
		ProxyIQN:     ProxyInitiatorName(),
		ExportIQN:    ExportIQN,
		ExportPortal: ExportPortal,
		Seed:         uint64(time.Now().UnixNano()),
	}
}

// ProxyInitiatorName reads the proxy's initiator name from
// /etc/iscsi/initiatorname.iscsi (the lab default when unreadable).
func ProxyInitiatorName() string {
	b, err := os.ReadFile("/etc/iscsi/initiatorname.iscsi")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "InitiatorName="); ok && v != "" {
				return v
			}
		}
	}
	return "iqn.2026-11.io.lunferry.lab:proxy"
}

// Export returns the proxy's export portal and IQN: lunferry's hook
// environment (LUNFERRY_EXPORT_PORTAL, LUNFERRY_EXPORT_IQN) first, else
// the config.
func (c *Config) Export() (portal, iqn string) {
	portal, iqn = c.ExportPortal, c.ExportIQN
	if v := os.Getenv("LUNFERRY_EXPORT_PORTAL"); v != "" {
		portal = v
	}
	if v := os.Getenv("LUNFERRY_EXPORT_IQN"); v != "" {
		iqn = v
	}
	return portal, iqn
}

// Target returns the portal and IQN of a role: an array's name or "proxy".
func (c *Config) Target(role string) (portal, iqn string, err error) {
	if role == "proxy" {
		p, i := c.Export()
		return p, i, nil
	}
	a, err := c.Array(role)
	if err != nil {
		return "", "", err
	}
	return a.Portals[0], a.IQN, nil
}

// HostLogoutAll unmounts the host's filesystem and logs the host out of
// every array and the export.
func (c *Config) HostLogoutAll() error {
	if err := c.Host.Unmount(); err != nil {
		return err
	}
	roles := []string{"proxy"}
	for r := range c.Arrays {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		p, iqn, err := c.Target(r)
		if err != nil {
			return err
		}
		if err := c.Host.Logout(p, iqn); err != nil {
			return err
		}
	}
	return nil
}
