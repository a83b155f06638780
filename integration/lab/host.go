package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Host plays the application host: it logs in to targets through its own
// open-iscsi iface, whose initiator name differs from the proxy's, so the
// arrays' and the proxy's ACLs are really exercised. It mounts the volume's
// filesystem at Mount.
type Host struct {
	// Iface is the open-iscsi iface record of the host ("labhost").
	Iface string `json:"iface"`
	// IQN is the host's initiator name.
	IQN string `json:"iqn"`
	// Mount is where the host mounts the volume's filesystem.
	Mount string `json:"mount"`
	// Iscsiadm is the iscsiadm program (empty: "iscsiadm").
	Iscsiadm string `json:"iscsiadm,omitempty"`
	// SysRoot is sysfs (empty: /sys).
	SysRoot string `json:"sysRoot,omitempty"`
	// CHAP holds the credentials the host presents, by target IQN (e.g.
	// the proxy's export when the runbook gives export.chap).
	CHAP map[string]*CHAP `json:"chap,omitempty"`
}

func (h *Host) sys() string {
	if h.SysRoot == "" {
		return "/sys"
	}
	return h.SysRoot
}

// iscsiadm runs iscsiadm and returns its exit code (0 on success) with its
// output; a failure to run it at all is an error.
func (h *Host) iscsiadm(args ...string) (int, string, error) {
	prog := h.Iscsiadm
	if prog == "" {
		prog = "iscsiadm"
	}
	out, err := exec.Command(prog, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out), nil
	}
	if err != nil {
		return -1, string(out), fmt.Errorf("lab: host: %s: %w", prog, err)
	}
	return 0, string(out), nil
}

// must runs iscsiadm, accepting the given exit codes besides 0
// (15: exists, 21: no records/sessions).
func (h *Host) must(ok []int, args ...string) error {
	code, out, err := h.iscsiadm(args...)
	if err != nil {
		return err
	}
	if code == 0 {
		return nil
	}
	for _, c := range ok {
		if code == c {
			return nil
		}
	}
	return fmt.Errorf("lab: host: iscsiadm %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(out))
}

// Setup creates the host's iface with its initiator name (idempotent).
func (h *Host) Setup() error {
	if err := h.must([]int{15}, "-m", "iface", "-I", h.Iface, "-o", "new"); err != nil {
		return err
	}
	return h.must(nil, "-m", "iface", "-I", h.Iface, "-o", "update", "-n", "iface.initiatorname", "-v", h.IQN)
}

// Login logs the host in to iqn at portal through its iface and returns the
// disk of LUN 0 (/dev/sdX), waiting for it to appear in sysfs.
func (h *Host) Login(portal, iqn string, timeout time.Duration) (string, error) {
	if err := h.Setup(); err != nil {
		return "", err
	}
	node := []string{"-m", "node", "-T", iqn, "-p", portal, "-I", h.Iface}
	if err := h.must([]int{15}, append(node, "-o", "new")...); err != nil {
		return "", err
	}
	if c := h.CHAP[iqn]; c != nil {
		if err := h.must(nil, append(append(node, "-o", "update"), chapSettings(c)...)...); err != nil {
			return "", err
		}
	}
	if err := h.must([]int{15}, append(node, "--login")...); err != nil {
		return "", err
	}
	deadline := time.Now().Add(timeout)
	for {
		if disk := h.SessionDisk(iqn); disk != "" {
			// The disk shows in the session's tree a moment before its
			// /sys/block entry is complete: keep polling on ENOENT.
			dev, err := ensureNode(disk)
			if !errors.Is(err, fs.ErrNotExist) || time.Now().After(deadline) {
				return dev, err
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("lab: host: no disk for %s on iface %s after %s", iqn, h.Iface, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Logout ends the host's session to iqn at portal and deletes its node
// record, so nothing logs it in again by accident. No session, no record
// or no host iface yet is fine.
func (h *Host) Logout(portal, iqn string) error {
	node := []string{"-m", "node", "-T", iqn, "-p", portal, "-I", h.Iface}
	if h.hasSession(iqn) {
		if err := h.must([]int{21}, append(node, "--logout")...); err != nil {
			return err
		}
	}
	// 3: the iface record does not exist (nothing was ever logged in).
	return h.must([]int{3, 21}, append(node, "-o", "delete")...)
}

func (h *Host) hasSession(iqn string) bool {
	for _, t := range h.Sessions() {
		if t == iqn {
			return true
		}
	}
	return false
}

// Sessions lists the targets the host's iface has sessions to.
func (h *Host) Sessions() []string {
	var out []string
	for _, s := range h.sessions() {
		tn, _ := os.ReadFile(filepath.Join(s, "targetname"))
		out = append(out, strings.TrimSpace(string(tn)))
	}
	return out
}

func (h *Host) sessions() []string {
	all, _ := filepath.Glob(filepath.Join(h.sys(), "class", "iscsi_session", "session*"))
	var out []string
	for _, s := range all {
		iface, _ := os.ReadFile(filepath.Join(s, "ifacename"))
		if strings.TrimSpace(string(iface)) == h.Iface {
			out = append(out, s)
		}
	}
	return out
}

// SessionDisk returns the disk name (sdX) of LUN 0 behind the host's
// session to iqn, or "" while there is none (or its sysfs attributes are
// not there yet): sysfs
// iscsi_session/sessionN/{targetname,ifacename}, then
// sessionN/device/target*/H:C:T:0/block/sdX.
func (h *Host) SessionDisk(iqn string) string {
	for _, s := range h.sessions() {
		tn, _ := os.ReadFile(filepath.Join(s, "targetname"))
		if strings.TrimSpace(string(tn)) != iqn {
			continue
		}
		blocks, _ := filepath.Glob(filepath.Join(s, "device", "target*", "*:0", "block", "*"))
		if len(blocks) != 1 {
			continue
		}
		// The link can appear before the disk's own attributes do.
		disk := filepath.Base(blocks[0])
		if _, err := os.Stat(filepath.Join("/sys/block", disk, "dev")); err == nil {
			return disk
		}
	}
	return ""
}

// ensureNode returns /dev/<disk>, making the node from sysfs when devtmpfs
// has not (there is no udev in the lab).
func ensureNode(disk string) (string, error) {
	dev := "/dev/" + disk
	if _, err := os.Stat(dev); err == nil {
		return dev, nil
	}
	b, err := os.ReadFile("/sys/block/" + disk + "/dev")
	if err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	var maj, min uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err != nil {
		return "", fmt.Errorf("lab: parse /sys/block/%s/dev %q: %w", disk, b, err)
	}
	if err := unix.Mknod(dev, unix.S_IFBLK|0o600, int(unix.Mkdev(maj, min))); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("lab: mknod %s: %w", dev, err)
	}
	return dev, nil
}

// MountDisk mounts dev (ext4) at the host's mount point.
func (h *Host) MountDisk(dev string) error {
	if err := os.MkdirAll(h.Mount, 0o755); err != nil {
		return fmt.Errorf("lab: host: %w", err)
	}
	return run("mount", "-t", "ext4", dev, h.Mount)
}

// Mounted reports whether something is mounted at the host's mount point.
func (h *Host) Mounted() bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[1] == h.Mount {
			return true
		}
	}
	return false
}

// Unmount unmounts the host's filesystem if mounted (syncing first).
func (h *Host) Unmount() error {
	if !h.Mounted() {
		return nil
	}
	unix.Sync()
	return run("umount", h.Mount)
}

// run runs a command, folding its output into the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Fsck runs `e2fsck -fn dev` (check only, never repair) and returns its
// output; a non-zero exit (errors found) is an error carrying the output.
func Fsck(dev string) (string, error) {
	cmd := exec.Command("e2fsck", "-fn", dev)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("lab: e2fsck -fn %s: %w:\n%s", dev, err, out.String())
	}
	return out.String(), nil
}

// Mkfs makes an ext4 filesystem on dev.
func Mkfs(dev string) error {
	return run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", "-L", "labvol", dev)
}

// DiskSize returns the size in bytes of block device dev (/dev/sdX) from
// sysfs.
func DiskSize(dev string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "size"))
	if err != nil {
		return 0, fmt.Errorf("lab: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("lab: size of %s: %w", dev, err)
	}
	return n * 512, nil
}

// ExecOut runs a command and returns its combined output.
func ExecOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
