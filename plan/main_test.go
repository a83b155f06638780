package plan_test

import (
	"os"
	"testing"

	"github.com/lunferry/lunferry/integration/vmtest"
)

// TestMain fails the package if a kernel test leaks a dm device, configfs
// object, iSCSI session or loop device (inside the lab VM only).
func TestMain(m *testing.M) { os.Exit(vmtest.LeakCheck(m)) }
