package loop_test

import (
	"os"
	"testing"

	"github.com/lunferry/lunferry/integration/vmtest"
)

// TestMain fails the package if a kernel test leaks a loop device (inside
// the lab VM only).
func TestMain(m *testing.M) { os.Exit(vmtest.LeakCheck(m)) }
