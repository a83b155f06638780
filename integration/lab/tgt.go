package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// TgtArray is a second kind of fake array: the userspace target stgt
// (tgtd, Debian package tgt) with one thin provisioned disk LUN over a
// sparse file. Unlike LIO 6.1 it implements GET LBA STATUS, from the
// file's holes (SEEK_DATA/SEEK_HOLE), and reports LBPME and LBPRZ with
// thin_provisioning=1; its LUN 0 is a controller, the disk is LUN 1, its
// INQUIRY says "IET VIRTUAL-DISK". It runs beside LIO: its portal must not
// be LIO's port.
type TgtArray struct {
	// IQN is the target's name; Portal "ip:port" where tgtd listens.
	IQN, Portal string
	// Backing is the sparse file, created or extended to SizeBytes.
	Backing   string
	SizeBytes int64
	// ControlPort numbers tgtd's management socket (tgtd -C, tgtadm -C),
	// so that it does not meet another tgtd's.
	ControlPort int
	// Log receives tgtd's output.
	Log string
	// Thick leaves thin provisioning off: the LUN reports no LBPME and
	// refuses GET LBA STATUS, as a fully provisioned array's does.
	Thick bool

	cmd *exec.Cmd
}

// TgtDiskLUN is the disk's LUN number on a TgtArray.
const TgtDiskLUN = 1

func (a *TgtArray) adm(args ...string) (string, error) {
	args = append([]string{"-C", strconv.Itoa(a.ControlPort), "--lld", "iscsi"}, args...)
	out, err := exec.Command("tgtadm", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: tgtadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Up starts tgtd (in the foreground of a child process, output to Log),
// creates the target with the disk at LUN 1 (thin unless Thick) and
// admits every initiator.
func (a *TgtArray) Up() error {
	f, err := os.OpenFile(a.Backing, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lab: tgt: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Size() < a.SizeBytes {
		err = f.Truncate(a.SizeBytes)
		if err != nil {
			f.Close()
			return fmt.Errorf("lab: tgt: size %s: %w", a.Backing, err)
		}
	}
	f.Close()
	if err := os.MkdirAll("/var/run/tgtd", 0o755); err != nil {
		return fmt.Errorf("lab: tgt: %w", err)
	}
	log, err := os.Create(a.Log)
	if err != nil {
		return fmt.Errorf("lab: tgt: %w", err)
	}
	defer log.Close()
	a.cmd = exec.Command("tgtd", "-f", "-C", strconv.Itoa(a.ControlPort), "--iscsi", "portal="+a.Portal)
	a.cmd.Stdout, a.cmd.Stderr = log, log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		return fmt.Errorf("lab: start tgtd: %w", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := a.adm("--op", "show", "--mode", "target"); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("lab: tgtd did not answer within 20s: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	lun := strconv.Itoa(TgtDiskLUN)
	steps := [][]string{
		{"--op", "new", "--mode", "target", "--tid", "1", "-T", a.IQN},
		{"--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", lun, "-b", a.Backing, "--bstype", "rdwr"},
		{"--op", "update", "--mode", "logicalunit", "--tid", "1", "--lun", lun, "--params", "thin_provisioning=1"},
		{"--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"},
	}
	if a.Thick {
		steps = append(steps[:2], steps[3:]...)
	}
	for _, args := range steps {
		if _, err := a.adm(args...); err != nil {
			return err
		}
	}
	return nil
}

// Show returns tgtadm's description of the target.
func (a *TgtArray) Show() (string, error) { return a.adm("--op", "show", "--mode", "target") }

// Down deletes the target (dropping its sessions) and stops the tgtd Up
// started.
func (a *TgtArray) Down() error {
	if a.cmd == nil || a.cmd.Process == nil {
		return nil
	}
	_, derr := a.adm("--op", "delete", "--mode", "target", "--tid", "1", "--force")
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
	}
	a.cmd = nil
	if derr != nil {
		return derr
	}
	return nil
}

// AllocatedBytes is the space a file holds on its file system (st_blocks),
// what a thin array's LUN over it uses.
func AllocatedBytes(path string) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Clean(path), &st); err != nil {
		return 0, fmt.Errorf("lab: stat %s: %w", path, err)
	}
	return st.Blocks * 512, nil
}
