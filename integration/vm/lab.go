package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// EnvLabDir overrides the lab directory (default <repo root>/.cache/lab).
const EnvLabDir = "LUNFERRY_LAB_DIR"

// ErrLabNotReady means the lab artifacts built by `make deps` are missing
// (lab kernel version, dm-clone from lunferry-dm-clone-dkms) or the kernel
// they were built for is no longer installed. Run `make deps` (as root the
// first time).
var ErrLabNotReady = errors.New("lab not ready: run 'make deps' (as root the first time)")

//go:embed initramfs-init.sh
var initramfsInit []byte

//go:embed guest-init.sh
var guestInit []byte

// initramfsFormat is bumped whenever the layout written by buildInitramfs
// changes, so cached archives from an older layout are rebuilt.
const initramfsFormat = "lunferry-initramfs-1"

// rootModules are the modules stage 1 needs to mount the root: virtio PCI
// transport, 9p over virtio and overlayfs. Their dependencies come from
// `modprobe --show-depends`, in load order.
var rootModules = []string{"virtio_pci", "9pnet_virtio", "9p", "overlay"}

// Runner runs a host command and returns its standard output. It is the seam
// through which the lab calls modprobe and decompressors; tests give a fake.
type Runner interface {
	Output(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct{}

// Output runs name with args and returns its stdout; stderr is folded into
// the error.
func (ExecRunner) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Lab describes the artifacts one lab kernel needs. OpenLab fills it from
// the lab directory; every path is a field so tests can point it at a fake
// tree.
type Lab struct {
	// Dir is the lab directory (cache of built artifacts, per-run shares).
	Dir string
	// KVer is the lab kernel version (uname -r), read from Dir/kver.
	KVer string
	// Kernel is the kernel image booted by qemu (/boot/vmlinuz-KVer).
	Kernel string
	// DMClone is the dm_clone module DKMS installed for KVer (make deps
	// installs lunferry-dm-clone-dkms); the guest loads it with modprobe.
	DMClone string
	// Busybox is a static busybox used as the initramfs' shell.
	Busybox string
	// Qemu is the qemu-system-x86_64 binary.
	Qemu string
	// Runner runs host commands (modprobe, xz, zstd).
	Runner Runner
}

// DefaultLabDir returns $LUNFERRY_LAB_DIR or <repo root>/.cache/lab, the repo
// root being the first directory at or above the working directory that
// holds go.mod with module github.com/lunferry/lunferry.
func DefaultLabDir() (string, error) {
	if d := os.Getenv(EnvLabDir); d != "" {
		return filepath.Abs(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("vm: lab dir: %w", err)
	}
	root, err := findRepoRoot(wd)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "lab"), nil
}

func findRepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/lunferry/lunferry\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("vm: no lunferry go.mod at or above %s: set %s", dir, EnvLabDir)
		}
	}
}

// OpenLab reads the lab directory prepared by `make deps` and checks that
// the kernel, its modules, dm_clone installed by DKMS, busybox and qemu
// are present. An empty dir means DefaultLabDir. Missing pieces wrap
// ErrLabNotReady.
func OpenLab(dir string) (*Lab, error) {
	if dir == "" {
		d, err := DefaultLabDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	b, err := os.ReadFile(filepath.Join(dir, "kver"))
	if err != nil {
		return nil, fmt.Errorf("vm: open lab %s: %w (%v)", dir, ErrLabNotReady, err)
	}
	kver := strings.TrimSpace(string(b))
	l := &Lab{
		Dir:     dir,
		KVer:    kver,
		Kernel:  "/boot/vmlinuz-" + kver,
		Busybox: "/bin/busybox",
		Qemu:    "qemu-system-x86_64",
		Runner:  ExecRunner{},
	}
	for _, p := range []string{l.Kernel, l.Busybox, filepath.Join("/lib/modules", kver, "modules.dep")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("vm: open lab %s: kernel %s: %w (%v)", dir, kver, ErrLabNotReady, err)
		}
	}
	ko, err := l.dkmsModule(context.Background())
	if err != nil {
		return nil, fmt.Errorf("vm: open lab %s: %w", dir, err)
	}
	l.DMClone = ko
	if _, err := exec.LookPath(l.Qemu); err != nil {
		return nil, fmt.Errorf("vm: open lab: %w (%v)", ErrLabNotReady, err)
	}
	return l, nil
}

// moduleOrder returns the host paths of the modules stage 1 loads, in load
// order, deduplicated, from `modprobe -S KVer --show-depends` (lines
// "insmod PATH [params]"; "builtin NAME" lines are skipped).
func (l *Lab) moduleOrder(ctx context.Context) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	for _, m := range rootModules {
		args := []string{"-S", l.KVer, "--show-depends", m}
		out, err := l.Runner.Output(ctx, "modprobe", args...)
		if err != nil {
			return nil, fmt.Errorf("vm: initramfs: modules for %s on %s: %w", m, l.KVer, err)
		}
		paths, err := parseShowDepends(out)
		if err != nil {
			return nil, fmt.Errorf("vm: initramfs: modprobe --show-depends %s: %w", m, err)
		}
		for _, p := range paths {
			if !seen[p] {
				seen[p] = true
				order = append(order, p)
			}
		}
	}
	return order, nil
}

// dkmsModule is the file modprobe loads dm_clone from on KVer: it must be
// the module DKMS built from lunferry-dm-clone-dkms (updates/dkms), so
// that the lab runs dm-clone as a Debian proxy gets it, not a module
// built by hand or shipped by another kernel.
func (l *Lab) dkmsModule(ctx context.Context) (string, error) {
	out, err := l.Runner.Output(ctx, "modprobe", "-S", l.KVer, "--show-depends", "dm_clone")
	if err != nil {
		return "", fmt.Errorf("no dm_clone module for kernel %s: %w (%v)", l.KVer, ErrLabNotReady, err)
	}
	paths, err := parseShowDepends(out)
	if err != nil || len(paths) == 0 {
		return "", fmt.Errorf("no dm_clone module for kernel %s (modprobe --show-depends: %q, %v): %w", l.KVer, out, err, ErrLabNotReady)
	}
	ko := paths[len(paths)-1]
	if !strings.Contains(ko, "/updates/dkms/") {
		return "", fmt.Errorf("dm_clone for kernel %s is %s, not the lunferry-dm-clone-dkms module in updates/dkms: %w", l.KVer, ko, ErrLabNotReady)
	}
	return ko, nil
}

// parseShowDepends extracts module paths from `modprobe --show-depends`.
func parseShowDepends(out []byte) ([]string, error) {
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
		case f[0] == "builtin":
		case f[0] == "insmod" && len(f) >= 2:
			paths = append(paths, f[1])
		default:
			return nil, fmt.Errorf("unexpected line %q", sc.Text())
		}
	}
	return paths, sc.Err()
}

// Initramfs returns the path of the stage-1 initramfs for this lab kernel,
// building it when it is missing or any input changed (kernel version, the
// module files, busybox, the init script). The archive is written to a
// temporary file and renamed, so concurrent runs never see a partial one.
func (l *Lab) Initramfs(ctx context.Context) (string, error) {
	mods, err := l.moduleOrder(ctx)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", initramfsFormat, l.KVer)
	h.Write(initramfsInit)
	for _, p := range append([]string{l.Busybox}, mods...) {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("vm: initramfs: %w", err)
		}
		fmt.Fprintf(h, "%s %d %d\n", p, st.Size(), st.ModTime().UnixNano())
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dir := filepath.Join(l.Dir, l.KVer)
	path := filepath.Join(dir, "initramfs.cpio")
	stamp := filepath.Join(dir, "initramfs.inputs")
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == sum {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	archive, err := l.buildInitramfs(ctx, mods)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("vm: initramfs: %w", err)
	}
	if err := writeFileAtomic(path, archive); err != nil {
		return "", fmt.Errorf("vm: initramfs: %w", err)
	}
	if err := writeFileAtomic(stamp, []byte(sum+"\n")); err != nil {
		return "", fmt.Errorf("vm: initramfs: %w", err)
	}
	return path, nil
}

// buildInitramfs renders the archive: busybox as /bin/busybox, the stage-1
// script as /init, /dev/console (the kernel opens it for init's stdio before
// devtmpfs exists) and the modules as /modules/NN-name.ko listed in load
// order in /modules/order. Compressed modules (.ko.xz, .ko.zst) are
// decompressed because busybox insmod takes plain ELF.
func (l *Lab) buildInitramfs(ctx context.Context, mods []string) ([]byte, error) {
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.Dir("bin", 0o755)
	c.Dir("dev", 0o755)
	c.CharDev("dev/console", 0o600, 5, 1)
	c.Dir("modules", 0o755)
	bb, err := os.ReadFile(l.Busybox)
	if err != nil {
		return nil, fmt.Errorf("vm: initramfs: busybox: %w (install busybox-static)", err)
	}
	c.File("bin/busybox", 0o755, bb)
	c.Symlink("bin/sh", "busybox")
	c.File("init", 0o755, initramfsInit)
	var order strings.Builder
	for i, p := range mods {
		data, err := l.readModule(ctx, p)
		if err != nil {
			return nil, err
		}
		base := filepath.Base(p)
		for _, ext := range []string{".xz", ".zst", ".gz"} {
			base = strings.TrimSuffix(base, ext)
		}
		name := fmt.Sprintf("%02d-%s", i, base)
		c.File("modules/"+name, 0o644, data)
		fmt.Fprintln(&order, name)
	}
	c.File("modules/order", 0o644, []byte(order.String()))
	if err := c.Close(); err != nil {
		return nil, fmt.Errorf("vm: initramfs: %w", err)
	}
	return buf.Bytes(), nil
}

func (l *Lab) readModule(ctx context.Context, path string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(path, ".ko"):
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("vm: initramfs: %w", err)
		}
		return b, nil
	case strings.HasSuffix(path, ".ko.xz"):
		tool = "xz"
	case strings.HasSuffix(path, ".ko.zst"):
		tool = "zstd"
	case strings.HasSuffix(path, ".ko.gz"):
		tool = "gzip"
	default:
		return nil, fmt.Errorf("vm: initramfs: %s: unknown module format", path)
	}
	b, err := l.Runner.Output(ctx, tool, "-dc", path)
	if err != nil {
		return nil, fmt.Errorf("vm: initramfs: decompress module: %w", err)
	}
	return b, nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(fs.FileMode(0o644)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
