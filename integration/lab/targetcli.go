package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The admin's targetcli-fb on the proxy: targetcli saves the whole LIO
// configuration (lunferry's exports included), and the distribution's unit
// (rtslib-fb-targetctl, target.service) runs `targetctl clear` when it
// stops and `targetctl restore` when it starts. The tests give every
// command a file of their own: the machine's saved configuration is never
// read or written.

// SaveConfig runs `targetcli saveconfig file`, as an admin does.
func SaveConfig(file string) error {
	return runTool("targetcli", "saveconfig", file)
}

// TargetctlClear runs `targetctl clear`, the unit's stop: every LIO
// target and storage object goes.
func TargetctlClear() error { return runTool("targetctl", "clear") }

// TargetctlRestore runs `targetctl restore file`, the unit's start (it
// clears everything first). It returns what rtslib reported as skipped,
// one line each: objects it could not restore.
func TargetctlRestore(file string) ([]string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command("targetctl", "restore", file)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("lab: targetctl restore %s: %w\n%s%s", file, err, out.String(), errb.String())
	}
	var skipped []string
	for _, l := range strings.Split(errb.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			skipped = append(skipped, l)
		}
	}
	return skipped, nil
}

// RTSDelete removes the targets and storage objects named (target WWNs,
// storage object names) wherever rtslib put them: after a restore, the
// lab's arrays live in HBAs that rtslib numbered, not the lab's.
func RTSDelete(names ...string) error {
	const script = `import sys
from rtslib_fb import RTSRoot
r = RTSRoot()
for t in list(r.targets):
    if t.wwn in sys.argv[1:]: t.delete()
for s in list(r.storage_objects):
    if s.name in sys.argv[1:]: s.delete()
`
	// The distribution's python, where rtslib-fb is installed.
	return runTool("/usr/bin/python3", append([]string{"-c", script}, names...)...)
}

func runTool(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("lab: %s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// LIOObjects lists the fabric targets (WWNs) and storage objects
// ("plugin/name", e.g. "iblock/lunferry-vol1") in configfs.
func LIOObjects() (targets, storage []string, err error) {
	root := DefaultConfigFS
	hbas, err := os.ReadDir(filepath.Join(root, "core"))
	if err != nil {
		return nil, nil, fmt.Errorf("lab: configfs: %w", err)
	}
	for _, h := range hbas {
		plugin, _, ok := cutLast(h.Name(), "_")
		if !ok || !h.IsDir() {
			continue
		}
		sos, _ := os.ReadDir(filepath.Join(root, "core", h.Name()))
		for _, so := range sos {
			if so.IsDir() {
				storage = append(storage, plugin+"/"+so.Name())
			}
		}
	}
	wwns, _ := os.ReadDir(filepath.Join(root, "iscsi"))
	for _, w := range wwns {
		if w.IsDir() && strings.Contains(w.Name(), ":") {
			targets = append(targets, w.Name())
		}
	}
	slices.Sort(storage)
	return targets, storage, nil
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// SavedConfig is targetcli's saveconfig.json, kept as generic JSON so that
// whatever rtslib wrote is written back unchanged.
type SavedConfig map[string]any

// ReadSavedConfig reads a saveconfig.json.
func ReadSavedConfig(file string) (SavedConfig, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var c SavedConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", file, err)
	}
	return c, nil
}

// Write saves c to file.
func (c SavedConfig) Write(file string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err == nil {
		err = os.WriteFile(file, b, 0o600)
	}
	if err != nil {
		return fmt.Errorf("lab: write %s: %w", file, err)
	}
	return nil
}

// Without returns c without the storage objects and targets named (names
// or WWNs): the file an admin saved before they existed.
func (c SavedConfig) Without(names ...string) SavedConfig {
	out := SavedConfig{}
	for k, v := range c {
		out[k] = v
	}
	keep := func(key, field string) {
		var kept []any
		list, _ := c[key].([]any)
		for _, o := range list {
			m, _ := o.(map[string]any)
			if n, _ := m[field].(string); !slices.Contains(names, n) {
				kept = append(kept, o)
			}
		}
		out[key] = kept
	}
	keep("storage_objects", "name")
	keep("targets", "wwn")
	return out
}

// Repoint returns c with block storage object name's device (its
// udev_path, "dev" in the file) set to dev: the file as saved when dev was
// the number of the device, restored after it changed.
func (c SavedConfig) Repoint(name, dev string) (SavedConfig, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var out SavedConfig
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	list, _ := out["storage_objects"].([]any)
	for _, o := range list {
		m, _ := o.(map[string]any)
		if m["name"] == name && m["plugin"] == "block" {
			m["dev"] = dev
			return out, nil
		}
	}
	return nil, fmt.Errorf("lab: saved configuration has no block storage object %s", name)
}
