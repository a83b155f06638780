package lab

import (
	"path/filepath"
	"testing"
)

// TestSavedConfigEdits: Without drops the named storage objects and
// targets and keeps the rest as rtslib wrote it; Repoint changes one block
// storage object's device in a copy.
func TestSavedConfigEdits(t *testing.T) {
	c := SavedConfig{
		"fabric_modules": []any{},
		"storage_objects": []any{
			map[string]any{"name": "lunferry-v1", "plugin": "block", "dev": "/dev/dm-3"},
			map[string]any{"name": "admin", "plugin": "ramdisk", "size": float64(1 << 20)},
		},
		"targets": []any{
			map[string]any{"wwn": "iqn.2026-11.io.lunferry.proxy:v1"},
			map[string]any{"wwn": "iqn.2026-11.com.example:admin"},
		},
	}
	file := filepath.Join(t.TempDir(), "saveconfig.json")
	if err := c.Without("lunferry-v1", "iqn.2026-11.io.lunferry.proxy:v1").Write(file); err != nil {
		t.Fatal(err)
	}
	w, err := ReadSavedConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	sos, tgs := w["storage_objects"].([]any), w["targets"].([]any)
	if len(sos) != 1 || sos[0].(map[string]any)["name"] != "admin" || len(tgs) != 1 || tgs[0].(map[string]any)["wwn"] != "iqn.2026-11.com.example:admin" {
		t.Fatalf("Without kept %v, %v", sos, tgs)
	}
	if _, ok := w["fabric_modules"]; !ok {
		t.Fatal("Without dropped fabric_modules")
	}

	r, err := c.Repoint("lunferry-v1", "/dev/dm-9")
	if err != nil {
		t.Fatal(err)
	}
	if got := r["storage_objects"].([]any)[0].(map[string]any)["dev"]; got != "/dev/dm-9" {
		t.Fatalf("Repoint: dev %v", got)
	}
	if got := c["storage_objects"].([]any)[0].(map[string]any)["dev"]; got != "/dev/dm-3" {
		t.Fatalf("Repoint changed the original: dev %v", got)
	}
	if _, err := c.Repoint("admin", "/dev/dm-9"); err == nil {
		t.Fatal("Repoint of a ramdisk storage object: no error")
	}
}
