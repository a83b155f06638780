package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestManPages: `lunferry man DIR` writes lunferry(8), with the exit
// codes, and a page per command with that command's flags; the hidden man
// command has none.
func TestManPages(t *testing.T) {
	c := newCLI(t)
	dir := filepath.Join(t.TempDir(), "man")
	c.ok("man", dir)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"lunferry.8", "lunferry-doctor.8", "lunferry-volume.8", "lunferry-migrate.8",
		"lunferry-restore.8", "lunferry-run.8", "lunferry-completion.8"}, names)
	page := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return string(b)
	}
	main := page("lunferry.8")
	require.Contains(t, main, ".TH lunferry 8\n")
	require.Contains(t, main, "EXIT CODES")
	require.Contains(t, main, "state directory locked by another lunferry")
	run := page("lunferry-run.8")
	require.Contains(t, run, ".TH lunferry-run 8\n")
	require.Contains(t, run, "--metrics-listen")
	require.Contains(t, run, "--state-dir", "global options")
	require.Contains(t, page("lunferry-migrate.8"), "finalize")
}
