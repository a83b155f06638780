package kernel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// TargetAvailable reports whether device-mapper can build tables of
// target type name: loaded, or a module of the running kernel that
// loading such a table brings in (dm asks for "dm-<name>").
func (m *mapper) TargetAvailable(ctx context.Context, name string) (bool, error) {
	c, err := m.client()
	if err != nil {
		return false, err
	}
	vs, err := c.TargetVersions(ctx)
	if err != nil {
		return false, err
	}
	for _, v := range vs {
		if v.Name == name {
			return true, nil
		}
	}
	dir, err := modulesDir()
	if err != nil {
		return false, err
	}
	return moduleInstalled(dir, "dm-"+name)
}

// modulesDir is the running kernel's /lib/modules/<release>.
func modulesDir() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])), nil
}

// moduleInstalled reports whether module (dashes and underscores alike)
// is listed in dir's modules.dep (loadable, after depmod) or
// modules.builtin (built in).
func moduleInstalled(dir, module string) (bool, error) {
	want := strings.ReplaceAll(module, "_", "-")
	for _, f := range []string{"modules.dep", "modules.builtin"} {
		ok, err := listsModule(filepath.Join(dir, f), want)
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// listsModule reports whether a modules.dep or modules.builtin file has a
// line for module, whose path's base is module.ko, compressed or not.
func listsModule(path, module string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p, _, _ := strings.Cut(sc.Text(), ":")
		base := filepath.Base(strings.TrimSpace(p))
		if i := strings.Index(base, ".ko"); i > 0 && strings.ReplaceAll(base[:i], "_", "-") == module {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return false, nil
}
