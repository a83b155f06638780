package plan_test

import (
	"fmt"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// servedThroughEra checks that the export ex serves the volume's era
// device and that it runs over d, the volume's device.
func servedThroughEra(inv plantest.Inventory, volume string, d plantest.Device, ex plan.ExportSpec) error {
	era, ok := inv.Devices[plan.EraName(volume)]
	switch {
	case !ok:
		return fmt.Errorf("no era device %s", plan.EraName(volume))
	case era.Era == nil || era.Era.Origin != d.Node:
		return fmt.Errorf("era device %s runs %q, not over %s", plan.EraName(volume), era.Table, d.Node)
	case ex.Device != era.Node:
		return fmt.Errorf("the export serves %s, not the era device %s", ex.Device, era.Node)
	case era.Suspended:
		return fmt.Errorf("the era device is suspended")
	}
	return nil
}
