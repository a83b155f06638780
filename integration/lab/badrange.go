package lab

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// BadRange plays a disk with bad sectors under an array: a device-mapper
// device (dmsetup) over a loop device on the array's backing file, used as
// the array's backing store (iblock), whose table can make a byte range
// fail every read and write (a dm "error" segment) and heal it again (the
// whole file mapped linear), live, under LIO.
type BadRange struct {
	// Name is the dm device's name; Loop the loop device on File.
	Name, Loop, File string
	// Sectors is the file's size in 512-byte sectors.
	Sectors int64
}

// NewBadRange maps file (a whole number of sectors) through a loop device
// and a dm device called name, healthy.
func NewBadRange(name, file string) (*BadRange, error) {
	loop, err := output("losetup", "--find", "--show", file)
	if err != nil {
		return nil, err
	}
	b := &BadRange{Name: name, Loop: loop, File: file}
	size, err := output("blockdev", "--getsz", loop)
	if err == nil {
		b.Sectors, err = strconv.ParseInt(size, 10, 64)
	}
	if err == nil {
		err = run("dmsetup", "create", name, "--noudevsync", "--table", b.table(0, 0))
	}
	if err == nil {
		err = run("dmsetup", "mknodes", name)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: bad range %s: %w (and %v)", name, err, b.Remove())
	}
	return b, nil
}

// Device is the dm device's node, the array's backing store.
func (b *BadRange) Device() string { return filepath.Join("/dev/mapper", b.Name) }

// table maps the loop device whole but for an error segment of n bytes at
// off (none when n is 0); off and n are whole sectors.
func (b *BadRange) table(off, n int64) string {
	if n == 0 {
		return fmt.Sprintf("0 %d linear %s 0", b.Sectors, b.Loop)
	}
	a, l := off/512, n/512
	return fmt.Sprintf("0 %d linear %s 0\n%d %d error\n%d %d linear %s %d",
		a, b.Loop, a, l, a+l, b.Sectors-a-l, b.Loop, a+l)
}

// Fail makes n bytes at off (whole sectors) fail every I/O.
func (b *BadRange) Fail(off, n int64) error {
	if off%512 != 0 || n%512 != 0 || n <= 0 || off+n > b.Sectors*512 {
		return fmt.Errorf("lab: bad range %s: %d bytes at %d: not whole sectors inside the disk", b.Name, n, off)
	}
	return b.load(b.table(off, n))
}

// Heal maps the whole file again: the range reads what the file holds.
func (b *BadRange) Heal() error { return b.load(b.table(0, 0)) }

func (b *BadRange) load(table string) error {
	if err := run("dmsetup", "load", b.Name, "--table", table); err != nil {
		return fmt.Errorf("lab: bad range %s: %w", b.Name, err)
	}
	if err := run("dmsetup", "resume", b.Name, "--noudevsync"); err != nil {
		return fmt.Errorf("lab: bad range %s: %w", b.Name, err)
	}
	return nil
}

// Remove removes the dm device and the loop device (the array using it
// must be down).
func (b *BadRange) Remove() error {
	var errs []string
	if out, err := exec.Command("dmsetup", "info", b.Name).CombinedOutput(); err == nil {
		if err := run("dmsetup", "remove", "--retry", "--noudevsync", b.Name); err != nil {
			errs = append(errs, err.Error())
		}
	} else if !strings.Contains(string(out), "not exist") {
		errs = append(errs, fmt.Sprintf("dmsetup info %s: %v: %s", b.Name, err, out))
	}
	if b.Loop != "" {
		if err := run("losetup", "-d", b.Loop); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab: bad range %s: remove: %s", b.Name, strings.Join(errs, "; "))
	}
	return nil
}

// fileExtentRE matches an extent line of `filefrag -e`: "0: 0.. 2047:
// 34816.. 36863: 2048: ...".
var fileExtentRE = regexp.MustCompile(`^\s*\d+:\s*(\d+)\.\.\s*(\d+):\s*(\d+)\.\.\s*\d+:`)

// DiskOffset returns where byte off of file lies on the disk its
// filesystem covers whole (filefrag's FIEMAP extents).
func DiskOffset(file string, off int64) (int64, error) {
	out, err := output("filefrag", "-e", "-b512", file)
	if err != nil {
		return 0, err
	}
	sector := off / 512
	for _, l := range strings.Split(out, "\n") {
		m := fileExtentRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		first, _ := strconv.ParseInt(m[1], 10, 64)
		last, _ := strconv.ParseInt(m[2], 10, 64)
		phys, _ := strconv.ParseInt(m[3], 10, 64)
		if first <= sector && sector <= last {
			return (phys+sector-first)*512 + off%512, nil
		}
	}
	return 0, fmt.Errorf("lab: byte %d of %s: in no extent filefrag lists:\n%s", off, file, out)
}

// output runs a command and returns its trimmed standard output.
func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("lab: %s %s: %v: %s", name, strings.Join(args, " "), err, ee.Stderr)
		}
		return "", fmt.Errorf("lab: %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
