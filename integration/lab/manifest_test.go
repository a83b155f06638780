package lab

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDropSessionsKeepsTheOthers(t *testing.T) {
	m := filepath.Join(t.TempDir(), "manifest.txt")
	app, err := openManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	sum := sumBytes([]byte("x"))
	for _, e := range []Entry{{sum, 1, 0, "base/a"}, {sum, 1, 2, "w2/a"}, {sum, 1, 1, "w1/a"}, {sum, 1, 2, "w2/b"}} {
		if err := app.add(e); err != nil {
			t.Fatal(err)
		}
	}
	app.close()
	if err := DropSessions(m, 2); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != "base/a" || got[1].Path != "w1/a" {
		t.Fatalf("after dropping session 2: %+v", got)
	}
	if _, err := os.Stat(m + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary manifest left behind: %v", err)
	}
}
