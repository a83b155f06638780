// Command vmexec runs a Go test binary inside the lunferry lab VM. It is a
// `go test -exec` wrapper:
//
//	CGO_ENABLED=0 go test -p 1 -exec "$PWD/bin/vmexec" ./dm/
//
// go test calls it with the test binary's path and arguments, in the
// package directory. vmexec boots the lab (integration/vm), runs the binary
// there in the same directory (the host root is visible in the guest at the
// same paths), streams its output and exits with its status. If the VM could
// not boot, panicked or timed out it prints the console tail and exits 125,
// so CI fails instead of passing silently (a panic that is a known bug of
// the lab kernel's own, knownKernelBugs, runs the binary once more in a
// fresh VM first). A test that passed while the
// kernel logged an oops, BUG or WARNING also fails (exit 1). When the binary
// fails, the tail of the guest console (kernel warnings and errors) follows
// its output.
//
// Other forms:
//
//	vmexec -prepare        check the lab and build the initramfs if stale
//	vmexec -- CMD [ARGS]   run any command in the lab (e.g. vmexec -- uname -a)
//
// Environment:
//
//	LUNFERRY_LAB_DIR      lab directory (default <repo>/.cache/lab)
//	LUNFERRY_VM_TIMEOUT   whole-run timeout (Go duration); default the test
//	                      binary's -test.timeout + 5m (3h for 0), or 15m
//	LUNFERRY_VM_MEMORY    guest memory in MiB (default 2048)
//	LUNFERRY_VM_VERBOSE   1: copy the guest console to stderr live
//	LUNFERRY_VM_SUMMARY   file to append one summary line per run to
//	                      (`make test-vm` prints it at the end)
//	LUNFERRY_VM_KEEP      1: keep the per-run share under <lab>/runs
//
// The test binary must be static (CGO_ENABLED=0; the Makefile exports it).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lunferry/lunferry/integration/vm"
)

// exitLab is the exit status when the lab itself failed (boot, panic,
// timeout): distinct from a test failure (1).
const exitLab = 125

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: vmexec TEST-BINARY [ARGS...] | vmexec -prepare | vmexec -- CMD [ARGS...]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	defer stop()

	if args[0] == "-prepare" {
		return prepare(ctx)
	}
	if args[0] == "--" {
		args = args[1:]
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "vmexec: -- needs a command")
			return 2
		}
	} else if strings.Contains(args[0], "/") {
		abs, err := filepath.Abs(args[0])
		if err != nil {
			fmt.Fprintf(os.Stderr, "vmexec: %v\n", err)
			return 2
		}
		args[0] = abs
	}

	opts := vm.Options{
		Command: args,
		Env:     guestEnv(os.Environ()),
		Output:  os.Stdout,
		Timeout: timeout(args),
	}
	if m, err := strconv.Atoi(os.Getenv("LUNFERRY_VM_MEMORY")); err == nil && m > 0 {
		opts.MemoryMiB = m
	}
	if os.Getenv("LUNFERRY_VM_VERBOSE") == "1" {
		opts.Console = os.Stderr
	}
	opts.KeepShare = os.Getenv("LUNFERRY_VM_KEEP") == "1"
	wd, _ := os.Getwd()
	opts.Dir = wd

	name := filepath.Base(args[0])
	res, err := runOnce(ctx, opts, name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmexec: %s: %v\n", name, err)
		var f *vm.Failure
		if errors.As(err, &f) {
			summary(fmt.Sprintf("%s (%s): LAB FAILURE: %v", name, wd, f.Err))
		} else {
			summary(fmt.Sprintf("%s (%s): LAB FAILURE: %v", name, wd, err))
			fmt.Fprintln(os.Stderr, "vmexec: run 'make deps' (as root the first time) to prepare the lab")
		}
		return exitLab
	}
	fmt.Fprintf(os.Stderr, "vmexec: %s: %s\n", name, res.Banner())
	code := res.ExitCode
	if len(res.KernelErrors) > 0 {
		fmt.Fprintf(os.Stderr, "vmexec: %s: the lab kernel reported errors during the run:\n", name)
		for _, l := range res.KernelErrors {
			fmt.Fprintf(os.Stderr, "  %s\n", l)
		}
		fmt.Fprintf(os.Stderr, "--- lab console (last lines) ---\n%s--- end ---\n", res.ConsoleTail)
		if code == 0 {
			code = 1
		}
	}
	if code != 0 && len(res.KernelErrors) == 0 {
		// Kernel warnings and errors (the console runs at loglevel 4) often
		// explain a failed kernel test.
		fmt.Fprintf(os.Stderr, "--- lab console (last lines) ---\n%s--- end ---\n", res.ConsoleTail)
	}
	summary(fmt.Sprintf("%s (%s): exit %d; %s", name, wd, code, res.Banner()))
	return code
}

// runOnce runs opts in the lab, and once more in a fresh VM when the first
// VM died of a known bug of the lab kernel's own.
func runOnce(ctx context.Context, opts vm.Options, name string) (*vm.Result, error) {
	res, err := vm.Run(ctx, opts)
	if bug, ok := knownKernelBug(err); ok {
		fmt.Fprintf(os.Stderr, "vmexec: %s: %v\nvmexec: %s: that is a known bug of the lab kernel's own (%s): running %s again in a fresh VM\n",
			name, err, name, bug, name)
		summary(fmt.Sprintf("%s (%s): lab kernel bug (%s), run again", name, opts.Dir, bug))
		res, err = vm.Run(ctx, opts)
	}
	return res, err
}

// knownKernelBugs are panics of the lab kernel (Debian 6.1) in code no
// test of ours can cause or avoid, by a signature of the console tail: a
// run that ends in one runs once more in a fresh VM (integration/README.md,
// "Pitfalls"). Any other panic fails the run.
var knownKernelBugs = []struct{ name, signature string }{
	{"iscsi_tcp dereferences the socket iscsid has just released while it cleans up a failed login's connection",
		"RIP: 0010:iscsi_sw_tcp_release_conn+"},
}

// knownKernelBug names the known kernel bug err is a panic of.
func knownKernelBug(err error) (string, bool) {
	var f *vm.Failure
	if !errors.As(err, &f) || !errors.Is(f.Err, vm.ErrPanic) {
		return "", false
	}
	for _, b := range knownKernelBugs {
		if strings.Contains(f.ConsoleTail, b.signature) {
			return b.name, true
		}
	}
	return "", false
}

func prepare(ctx context.Context) int {
	lab, err := vm.OpenLab("")
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmexec: %v\n", err)
		return 1
	}
	initrd, err := lab.Initramfs(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmexec: %v\n", err)
		return 1
	}
	fmt.Printf("lab: kernel %s\nlab: vmlinuz %s\nlab: initramfs %s\nlab: dm-clone %s\n", lab.KVer, lab.Kernel, initrd, lab.DMClone)
	return 0
}

// guestEnv passes the caller's environment on, minus what only makes sense
// on the host.
func guestEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PWD", "OLDPWD", "SHLVL", "_", "LUNFERRY_VM_SUMMARY":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// noTimeout bounds runs whose caller asked for no timeout (-test.timeout=0):
// the VM still gets a hard limit.
const noTimeout = 3 * time.Hour

// timeout is LUNFERRY_VM_TIMEOUT, else the test binary's -test.timeout plus
// 5 minutes for boot and slack (3 h for -test.timeout=0), else
// vm.DefaultTimeout.
func timeout(args []string) time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LUNFERRY_VM_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	for _, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "-test.timeout="); ok {
			d, err := time.ParseDuration(v)
			switch {
			case err == nil && d > 0:
				return d + 5*time.Minute
			case err == nil && d == 0: // go test -timeout 0: the caller wants none
				return noTimeout
			}
		}
	}
	return vm.DefaultTimeout
}

func summary(line string) {
	path := os.Getenv("LUNFERRY_VM_SUMMARY")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}
