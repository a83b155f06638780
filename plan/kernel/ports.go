package kernel

import (
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/internal/logind"
	"github.com/lunferry/lunferry/internal/loop"
	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/plan"
)

// Options configure the real ports.
type Options struct {
	// SysRoot is sysfs (empty: /sys).
	SysRoot string
	// DevRoot is the device directory (empty: /dev).
	DevRoot string
	// ConfigFSRoot is LIO's configfs directory (empty: lio's default,
	// /sys/kernel/config/target).
	ConfigFSRoot string
	// Iscsiadm is the iscsiadm program (empty: "iscsiadm" in PATH).
	Iscsiadm string
	// DiskTimeout bounds the wait for a LUN's disk after login (0: 30s).
	DiskTimeout time.Duration
	// TotalRate is the bandwidth budget shared by all hydrating volumes
	// (0: none, each volume's own throttle only).
	TotalRate clone.Rate
	// TickInterval is the period of the control loop the regulator is
	// tuned for (0: 2s).
	TickInterval time.Duration
}

func (o Options) dm() dm.Options { return dm.Options{SysRoot: o.SysRoot, DevRoot: o.DevRoot} }

// Ports returns the ports over the real kernel: dm (ioctl), initiator
// (iscsiadm + sysfs), lio (configfs), loop devices, hooks as processes,
// logind's inhibitor and clone's regulator. The device-mapper control node
// is opened at first use, so commands that never touch dm need no root.
func Ports(o Options) plan.Ports {
	ini, err := initiator.New(initiator.Options{Iscsiadm: o.Iscsiadm, SysRoot: o.SysRoot, DevRoot: o.DevRoot})
	var ip plan.Initiator = &initiatorPort{c: ini, timeout: o.DiskTimeout}
	if err != nil {
		ip = brokenInitiator{err}
	}
	m := &mapper{opts: o.dm()}
	return plan.Ports{
		Initiator: ip,
		Mapper:    m,
		Era:       eras{m},
		Exporter:  &exporter{r: lio.NewRoot(lio.Options{ConfigFSRoot: o.ConfigFSRoot})},
		Metadata:  metadata{d: loop.Devices{SysRoot: o.SysRoot, DevRoot: o.DevRoot}},
		Hooks:     ExecHooks{},
		Fencer:    fencer{ini},
		OldWriter: oldWriter{ini},
		Inhibitor: logind.Inhibitor{},
		Regulator: regulator(o.TotalRate, o.TickInterval),
		Scanner:   scanner{},
		Verifier:  verifier{},
		Thin:      thinDevices{},
		Secrets:   SecretFiles{},
	}
}

// regulator returns clone's regulator (one controller per volume) tuned
// for a control loop ticking every tick (0: 2s); total > 0 shares that many
// bytes per second among all hydrating volumes.
func regulator(total clone.Rate, tick time.Duration) *clone.Regulator {
	if tick <= 0 {
		tick = 2 * time.Second
	}
	o := clone.RegulatorOptions{Controller: clone.Options{Interval: tick}}
	if total > 0 {
		o.Budget = clone.NewBudget(total)
	}
	return clone.NewRegulator(o)
}
