package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// objects lists what a figure group could leave behind in the guest, one
// "kind name" string each: dm devices, LIO iSCSI targets and storage
// objects, the iSCSI sessions' targets, loop devices' backing files and
// the bench directory's disk images and metadata files. A group that leaves any of them costs the
// groups after it their RAM or their names.
func objects(sysRoot, benchDir string) []string {
	var out []string
	add := func(kind, pattern string, read bool) {
		paths, _ := filepath.Glob(filepath.Join(sysRoot, pattern))
		for _, p := range paths {
			name := filepath.Base(p)
			if read {
				b, err := os.ReadFile(p)
				if err != nil {
					continue
				}
				name = strings.TrimSpace(string(b))
			}
			out = append(out, kind+" "+name)
		}
	}
	add("dm", "sys/block/dm-*/dm/name", true)
	add("target", "sys/kernel/config/target/iscsi/iqn.*", false)
	add("storage-object", "sys/kernel/config/target/core/*_*/*", false)
	add("session", "sys/class/iscsi_session/session*/targetname", true)
	add("loop", "sys/block/loop*/loop/backing_file", true)
	// The arrays' backing files and the volumes' metadata: what fills the
	// guest's RAM (runbooks and state records are small).
	for _, pattern := range []string{"*.img", "*/metadata/*"} {
		paths, _ := filepath.Glob(filepath.Join(benchDir, pattern))
		for _, p := range paths {
			rel, _ := filepath.Rel(benchDir, p)
			out = append(out, "file "+rel)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// leftovers are the objects in after that were not in before.
func leftovers(before, after []string) []string {
	var left []string
	for _, o := range after {
		if _, found := slices.BinarySearch(before, o); !found {
			left = append(left, o)
		}
	}
	return left
}

// leftBehind is the failure of a group that left objects behind.
func leftBehind(group string, left []string) error {
	if len(left) == 0 {
		return nil
	}
	const show = 8
	more := ""
	if len(left) > show {
		more = fmt.Sprintf(" and %d more", len(left)-show)
		left = left[:show]
	}
	return fmt.Errorf("bench: %s left behind %s%s: each group must take away what it set up", group, strings.Join(left, ", "), more)
}
