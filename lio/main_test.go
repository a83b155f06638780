package lio_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/lio"
)

// TestMain fails the package if a kernel test leaked LIO objects: inside
// the lab VM, after all tests, configfs must hold no storage object named
// with lio.NamePrefix and no target named like the tests' IQNs.
func TestMain(m *testing.M) {
	code := m.Run()
	if vmtest.InVM() {
		if leaks := kernelLeaks(); len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "lio: kernel tests leaked configfs objects:\n  %s\n", strings.Join(leaks, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

func kernelLeaks() []string {
	var out []string
	sos, _ := filepath.Glob(filepath.Join(lio.DefaultConfigFSRoot, "core", "*_*", lio.NamePrefix+"*"))
	out = append(out, sos...)
	tgs, _ := filepath.Glob(filepath.Join(lio.DefaultConfigFSRoot, "iscsi", kernelIQNBase+"*"))
	out = append(out, tgs...)
	return out
}
