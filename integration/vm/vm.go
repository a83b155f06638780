// Package vm boots the lunferry lab: Debian's 6.1 kernel under qemu software
// emulation (TCG; KVM is not usable on the lab machines), with the host root
// shared read-only over 9p under a tmpfs overlay, the lab modules loaded
// (device-mapper with an out-of-tree dm-clone, LIO, iSCSI, SCSI disk, loop,
// brd), configfs mounted, lo up and iscsid running. It runs one command in
// the guest and hands back its output and exit status.
//
// The guest runs in two stages. Stage 1 (initramfs-init.sh, /init of a
// small initramfs built here without root) mounts the root and switch_roots.
// Stage 2 (guest-init.sh, copied into a per-run read-write 9p share) loads the
// modules (dm_clone from DKMS), prints a banner ("lunferry-lab: ready
// kernel=... dm-clone=..."),
// runs the command (job.sh, rendered by Run) and writes its output and exit
// status into the share, because qemu's own exit status says nothing about
// the guest. Then it powers the VM off.
//
// The kernel console (first serial port) is kept as a tail for error reports
// and watched for panics; the command's output is streamed live over a second
// serial port.
package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults used when the matching Options field is zero.
const (
	DefaultMemoryMiB     = 2048
	DefaultCPUs          = 2
	DefaultTimeout       = 15 * time.Minute
	DefaultInitiatorName = "iqn.2026-11.io.lunferry.lab:proxy"
	// EnvInVM is set to "1" for the command run in the guest (see vmtest).
	EnvInVM = "LUNFERRY_IN_VM"
)

// Sentinel errors wrapped by *Failure; branch with errors.Is.
var (
	// ErrBoot means the guest never reached the point where the command runs
	// (qemu failed, stage 1 or 2 failed, a module did not load).
	ErrBoot = errors.New("lab VM did not boot")
	// ErrPanic means the guest kernel panicked (oops=panic turns oopses into panics).
	ErrPanic = errors.New("lab kernel panicked")
	// ErrTimeout means Options.Timeout (or the context) expired; qemu was killed.
	ErrTimeout = errors.New("lab VM timed out")
	// ErrNoStatus means the command started but the guest stopped before
	// writing its exit status.
	ErrNoStatus = errors.New("lab VM stopped without the command's exit status")
)

// Failure is the error Run returns when the VM, not the command, failed. It
// carries the last lines of the kernel console.
type Failure struct {
	// Err is one of ErrBoot, ErrPanic, ErrTimeout, ErrNoStatus.
	Err error
	// Detail says what was seen (qemu's error, the set-up step that failed).
	Detail string
	// ConsoleTail holds the last lines of the guest console.
	ConsoleTail string
}

func (f *Failure) Error() string {
	msg := "vm: " + f.Err.Error()
	if f.Detail != "" {
		msg += ": " + f.Detail
	}
	return msg + "\n--- lab console (last lines) ---\n" + f.ConsoleTail + "--- end of lab console ---"
}

// Unwrap returns the sentinel.
func (f *Failure) Unwrap() error { return f.Err }

// Options configures one boot of the lab VM.
type Options struct {
	// LabDir is the lab directory prepared by `make deps`; empty means
	// DefaultLabDir().
	LabDir string
	// Lab, if set, is used instead of OpenLab(LabDir) (tests, other kernels).
	Lab *Lab
	// MemoryMiB is the guest memory (default 2048). The guest's writable
	// root is a tmpfs: files the command writes count against it.
	MemoryMiB int
	// CPUs is the number of vCPUs (default 2).
	CPUs int
	// Timeout bounds the whole run, boot included (default 15 min).
	Timeout time.Duration
	// Disks are raw image files attached as virtio-blk disks, in order
	// /dev/vda, /dev/vdb, ... with serial "lunferry-dN" (N = index, visible in
	// /sys/block/vdX/serial). They persist across boots: pass the same files
	// to a second Run to see what survived a power cut.
	Disks []string
	// Dir is the command's working directory in the guest; the host root is
	// visible at the same paths. Default: the caller's working directory.
	Dir string
	// Env is the command's complete environment; LUNFERRY_IN_VM=1 is added,
	// and a PATH with the sbin directories when Env has none.
	Env []string
	// Command is the program and its arguments, run in the guest.
	Command []string
	// Output receives the command's stdout and stderr live (may be nil).
	Output io.Writer
	// Console receives the guest kernel console live (may be nil).
	Console io.Writer
	// KillWhen, if set, is called for every line the command prints; when it
	// returns true qemu is killed at once (a power cut) and Run returns a
	// Result with PowerCut set and no error.
	KillWhen func(line string) bool
	// InitiatorName is written to the guest's /etc/iscsi/initiatorname.iscsi
	// (default iqn.2026-11.io.lunferry.lab:proxy).
	InitiatorName string
	// KeepShare keeps the per-run share directory (guest-init.sh, job.sh,
	// output, status) under LabDir/runs for debugging.
	KeepShare bool
}

// Result is what one boot produced.
type Result struct {
	// ExitCode is the command's exit status (-1 when unknown).
	ExitCode int
	// Output is the command's stdout and stderr, merged.
	Output []byte
	// ConsoleTail holds the last lines of the guest console.
	ConsoleTail string
	// Kernel is the guest's `uname -r`; DMClone the clone target version as
	// `dmsetup targets` prints it (e.g. "v1.0.0"); DMCloneModule the file
	// dm_clone was loaded from (DKMS's, in updates/dkms).
	Kernel, DMClone, DMCloneModule string
	// Boot is the wall time from qemu start to the guest's ready banner;
	// GuestUptime the guest's own uptime at that point; Modules the time the
	// guest spent loading modules.
	Boot, GuestUptime, Modules time.Duration
	// Wall is the wall time of the whole run.
	Wall time.Duration
	// PowerCut is set when KillWhen killed the VM.
	PowerCut bool
	// KernelErrors lists console lines reporting kernel bugs (BUG:, Oops,
	// WARNING:, hung task, ...) seen during the run.
	KernelErrors []string
	// Share is the per-run share directory (deleted unless KeepShare).
	Share string
}

// Banner describes the lab in one line, for logs.
func (r *Result) Banner() string {
	return fmt.Sprintf("lab: kernel %s, dm-clone loaded (target clone %s from %s), boot %.1fs (guest uptime %.1fs, modules %.1fs), wall %.1fs",
		r.Kernel, r.DMClone, r.DMCloneModule, r.Boot.Seconds(), r.GuestUptime.Seconds(), r.Modules.Seconds(), r.Wall.Seconds())
}

var readyRE = regexp.MustCompile(`lunferry-lab: ready kernel=(\S+) dm-clone=(\S+) uptime=([0-9.]+) modules=([0-9.]+)s module=(\S+)`)

// kernelErrorRE matches console lines that report a kernel bug.
var kernelErrorRE = regexp.MustCompile(`(BUG: |Oops: |WARNING: CPU|general protection fault|Kernel panic|INFO: task .* blocked for more than|watchdog: BUG: soft lockup|Call Trace:)`)

// Run boots the lab VM, runs opts.Command in it and returns its result. A
// non-zero exit status of the command is not an error: look at
// Result.ExitCode. An error of type *Failure means the VM itself failed
// (boot, panic, timeout); the Result returned with it holds what was seen.
// qemu is always killed before Run returns.
func Run(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if len(opts.Command) == 0 {
		return nil, errors.New("vm: run: no command")
	}
	lab := opts.Lab
	if lab == nil {
		var err error
		if lab, err = OpenLab(opts.LabDir); err != nil {
			return nil, err
		}
	}
	initrd, err := lab.Initramfs(ctx)
	if err != nil {
		return nil, err
	}
	opts = withDefaults(opts)
	for _, d := range opts.Disks {
		if _, err := os.Stat(d); err != nil {
			return nil, fmt.Errorf("vm: run: disk: %w", err)
		}
	}

	runs := filepath.Join(lab.Dir, "runs")
	if err := os.MkdirAll(runs, 0o755); err != nil {
		return nil, fmt.Errorf("vm: run: %w", err)
	}
	removeStaleShares(runs, 24*time.Hour)
	share, err := os.MkdirTemp(runs, "run-")
	if err != nil {
		return nil, fmt.Errorf("vm: run: %w", err)
	}
	if !opts.KeepShare {
		defer os.RemoveAll(share)
	}
	if err := writeShare(share, lab, opts, start.Add(opts.Timeout-hangDumpMargin)); err != nil {
		return nil, err
	}

	res := &Result{ExitCode: -1, Share: share}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	conR, conW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("vm: run: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		conR.Close()
		conW.Close()
		return nil, fmt.Errorf("vm: run: %w", err)
	}
	var qemuErr bytes.Buffer
	cmd := exec.Command(lab.Qemu, qemuArgs(lab, initrd, share, opts)...)
	cmd.Stdin = nil
	cmd.Stdout = &qemuErr
	cmd.Stderr = &qemuErr
	cmd.ExtraFiles = []*os.File{conW, outW} // fd 3: console, fd 4: command output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	qemuStart := time.Now()
	if err := cmd.Start(); err != nil {
		conR.Close()
		conW.Close()
		outR.Close()
		outW.Close()
		return nil, &Failure{Err: ErrBoot, Detail: fmt.Sprintf("start %s: %v", lab.Qemu, err)}
	}
	conW.Close()
	outW.Close()
	// kill ends qemu's whole process group, but only while qemu has not been
	// reaped: once it has, its pid (= the group id) may belong to someone else.
	var (
		procMu sync.Mutex
		exited bool
	)
	kill := func() {
		procMu.Lock()
		defer procMu.Unlock()
		if !exited {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	defer kill()

	con := newConsole(opts.Console)
	var (
		mu        sync.Mutex
		powerCut  bool
		panicked  bool
		readyAt   time.Time
		streamed  bytes.Buffer
		readersWG sync.WaitGroup
	)
	readersWG.Add(2)
	go func() { // kernel console
		defer readersWG.Done()
		sc := bufio.NewScanner(conR)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			con.add(line)
			mu.Lock()
			if m := readyRE.FindStringSubmatch(line); m != nil && readyAt.IsZero() {
				readyAt = time.Now()
				res.Kernel, res.DMClone, res.DMCloneModule = m[1], m[2], m[5]
				res.GuestUptime = seconds(m[3])
				res.Modules = seconds(m[4])
			}
			if kernelErrorRE.MatchString(line) {
				res.KernelErrors = append(res.KernelErrors, line)
			}
			if strings.Contains(line, "Kernel panic - not syncing") {
				panicked = true
			}
			mu.Unlock()
		}
		// A line longer than the buffer stops the scanner: keep draining so
		// qemu never blocks on a full console pipe.
		_, _ = io.Copy(io.Discard, conR)
	}()
	go func() { // command output (second serial port)
		defer readersWG.Done()
		r := bufio.NewReader(outR)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				if opts.Output != nil {
					_, _ = opts.Output.Write(line)
				}
				mu.Lock()
				streamed.Write(line)
				mu.Unlock()
				if opts.KillWhen != nil && opts.KillWhen(strings.TrimRight(string(line), "\r\n")) {
					mu.Lock()
					powerCut = true
					mu.Unlock()
					kill()
				}
			}
			if err != nil {
				return
			}
		}
	}()

	waitErr := make(chan error, 1)
	go func() {
		// Wait for the exit without reaping (WNOWAIT): the zombie keeps the
		// pid, so a concurrent kill cannot hit a recycled one; then reap.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		// qemu is gone: kill whatever it left in its group, then stop killing.
		kill()
		procMu.Lock()
		exited = true
		procMu.Unlock()
		waitErr <- cmd.Wait()
	}()
	var (
		timedOut bool
		exitErr  error
	)
	select {
	case exitErr = <-waitErr:
	case <-ctx.Done():
		timedOut = true
		kill()
		<-waitErr
	}
	readersWG.Wait()
	conR.Close()
	outR.Close()

	res.Wall = time.Since(start)
	res.ConsoleTail = con.tail()
	if !readyAt.IsZero() {
		res.Boot = readyAt.Sub(qemuStart)
	}
	res.Output = streamed.Bytes()
	if b, err := os.ReadFile(filepath.Join(share, "output")); err == nil && len(b) >= len(res.Output) {
		res.Output = b
	}
	fail := func(sentinel error, detail string) (*Result, error) {
		if q := strings.TrimSpace(qemuErr.String()); q != "" {
			detail = strings.TrimPrefix(detail+"; qemu: "+q, "; ")
		}
		return res, &Failure{Err: sentinel, Detail: detail, ConsoleTail: res.ConsoleTail}
	}
	if powerCut {
		res.PowerCut = true
		return res, nil
	}
	if panicked {
		return fail(ErrPanic, "")
	}
	if timedOut {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail(ErrTimeout, fmt.Sprintf("after %s (qemu killed)", opts.Timeout))
		}
		return fail(ErrTimeout, fmt.Sprintf("cancelled: %v (qemu killed)", ctx.Err()))
	}
	if b, err := os.ReadFile(filepath.Join(share, "setup-error")); err == nil {
		return fail(ErrBoot, "guest set-up: "+strings.TrimSpace(string(b)))
	}
	if readyAt.IsZero() {
		return fail(ErrBoot, fmt.Sprintf("qemu ended (%s) after %.1fs before the guest printed its ready banner",
			exitDesc(exitErr), time.Since(qemuStart).Seconds()))
	}
	b, err := os.ReadFile(filepath.Join(share, "status"))
	if err != nil {
		return fail(ErrNoStatus, "")
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fail(ErrNoStatus, fmt.Sprintf("bad status %q", b))
	}
	res.ExitCode = code
	return res, nil
}

// removeStaleShares deletes share directories left by runs that were killed
// before they could clean up (vmexec got SIGKILL), once they are older than
// age. Errors are ignored: it is housekeeping.
func removeStaleShares(runs string, age time.Duration) {
	entries, _ := os.ReadDir(runs)
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "run-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.RemoveAll(filepath.Join(runs, e.Name()))
		}
	}
}

func exitDesc(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func seconds(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Second))
}

func withDefaults(o Options) Options {
	if o.MemoryMiB == 0 {
		o.MemoryMiB = DefaultMemoryMiB
	}
	if o.CPUs == 0 {
		o.CPUs = DefaultCPUs
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.InitiatorName == "" {
		o.InitiatorName = DefaultInitiatorName
	}
	if o.Dir == "" {
		o.Dir, _ = os.Getwd()
	}
	return o
}

// hangDumpMargin is how long before the timeout the guest dumps its blocked
// tasks (sysrq w) to the console, so that a hang's report shows where the
// kernel is stuck.
const hangDumpMargin = 15 * time.Second

// writeShare fills the per-run share: the stage-2 script, lab.env (values
// the stage-2 script sources) and job.sh (the command). dumpAt is the wall
// time at which the guest dumps its blocked tasks if the command still runs.
func writeShare(share string, lab *Lab, opts Options, dumpAt time.Time) error {
	env := fmt.Sprintf("DM_CLONE_KO=%s\nINITIATOR_NAME=%s\nHANG_DUMP_AT=%d\n",
		shellQuote(lab.DMClone), shellQuote(opts.InitiatorName), dumpAt.Unix())
	files := map[string][]byte{
		"guest-init.sh": guestInit,
		"lab.env":       []byte(env),
		"job.sh":        []byte(jobScript(opts.Dir, opts.Env, opts.Command)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(share, name), data, 0o755); err != nil {
			return fmt.Errorf("vm: run: share: %w", err)
		}
	}
	return nil
}

// guestPath is the PATH given to the command when its Env has none.
const guestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// jobScript renders the shell script that runs the command: cd to dir, then
// exec env -i with exactly env (+ LUNFERRY_IN_VM=1, + PATH if missing).
// Entries whose name the shell cannot carry are dropped.
func jobScript(dir string, env []string, command []string) string {
	var b strings.Builder
	b.WriteString("# generated by lunferry integration/vm: the command to run in the lab guest\n")
	fmt.Fprintf(&b, "cd %s || exit 125\n", shellQuote(dir))
	b.WriteString("exec env -i")
	hasPath := false
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !envNameRE.MatchString(name) || name == EnvInVM {
			continue
		}
		if name == "PATH" {
			hasPath = true
		}
		b.WriteString(" " + shellQuote(kv))
	}
	if !hasPath {
		b.WriteString(" " + shellQuote("PATH="+guestPath))
	}
	b.WriteString(" " + shellQuote(EnvInVM+"=1"))
	for _, a := range command {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell: 'it'\”s'.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// qemuArgs renders the qemu command line. Field notes:
//   - -accel tcg,thread=multi: KVM aborts or hangs on these machines, and
//     qemu's kvm:tcg fallback never triggers, so TCG is chosen explicitly.
//   - console on the first serial port (fd 3), the command's output on the
//     second (fd 4); qemu's own messages go to its stderr.
//   - panic=-1 + -no-reboot: a panic ends qemu at once; oops=panic turns an
//     oops into one so a broken kernel fails fast instead of hanging.
//   - hostroot: the host's / read-only (multidevs=remap: it spans several
//     host filesystems); lunferry-lab: the per-run read-write share.
func qemuArgs(lab *Lab, initrd, share string, opts Options) []string {
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
		"-smp", strconv.Itoa(opts.CPUs), "-m", strconv.Itoa(opts.MemoryMiB),
		"-no-reboot",
		"-kernel", lab.Kernel, "-initrd", initrd,
		// no_timer_check: under TCG on a loaded host the IO-APIC timer
		// check can time out and panic the boot ("IO-APIC + timer doesn't
		// work"); seen once in the lab.
		"-append", "console=ttyS0,115200 earlyprintk=serial,ttyS0,115200 rdinit=/init panic=-1 oops=panic loglevel=4 printk.devkmsg=on no_timer_check",
		"-chardev", "file,id=con,path=/dev/fd/3", "-serial", "chardev:con",
		"-chardev", "file,id=out,path=/dev/fd/4", "-serial", "chardev:out",
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + share + ",mount_tag=lunferry-lab,security_model=none,multidevs=remap",
		"-device", "virtio-rng-pci",
	}
	for i, d := range opts.Disks {
		id := fmt.Sprintf("d%d", i)
		args = append(args,
			"-drive", "file="+strings.ReplaceAll(d, ",", ",,")+",format=raw,if=none,id="+id,
			"-device", fmt.Sprintf("virtio-blk-pci,drive=%s,serial=lunferry-%s", id, id))
	}
	return args
}

// console keeps the last lines of the guest console and copies every line
// to an optional writer.
type console struct {
	mu    sync.Mutex
	w     io.Writer
	lines []string
}

const consoleTailLines = 150

func newConsole(w io.Writer) *console { return &console{w: w} }

func (c *console) add(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil {
		fmt.Fprintln(c.w, line)
	}
	c.lines = append(c.lines, line)
	if len(c.lines) > 4*consoleTailLines {
		c.lines = append([]string(nil), c.lines[len(c.lines)-consoleTailLines:]...)
	}
}

func (c *console) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lines
	if len(l) > consoleTailLines {
		l = l[len(l)-consoleTailLines:]
	}
	if len(l) == 0 {
		return "(no console output)\n"
	}
	return strings.Join(l, "\n") + "\n"
}
