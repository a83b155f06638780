package kernel

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/plan"
)

// mapper adapts dm.Client to plan.Mapper, opened at first use.
type mapper struct {
	opts dm.Options
	once sync.Once
	c    *dm.Client
	err  error
}

func (m *mapper) client() (*dm.Client, error) {
	m.once.Do(func() { m.c, m.err = dm.Open(m.opts) })
	return m.c, m.err
}

func (m *mapper) devRoot() string {
	if m.opts.DevRoot == "" {
		return "/dev"
	}
	return m.opts.DevRoot
}

// node returns /dev/dm-N for a device (devtmpfs makes it; udev's
// /dev/mapper names are not relied upon).
func (m *mapper) node(info dm.Info) string { return m.nodeOf(info.Dev) }

func (m *mapper) nodeOf(d dm.DevNum) string {
	return filepath.Join(m.devRoot(), fmt.Sprintf("dm-%d", d.Minor))
}

func (m *mapper) Lookup(ctx context.Context, name string) (string, bool, error) {
	c, err := m.client()
	if err != nil {
		return "", false, err
	}
	info, err := c.Info(ctx, name)
	if errors.Is(err, dm.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return m.node(info), true, nil
}

func uuidFor(name string) string { return dm.UUIDPrefix + name }

func (m *mapper) CreateClone(ctx context.Context, name string, sectors uint64, cl dm.Clone) (string, error) {
	c, err := m.client()
	if err != nil {
		return "", err
	}
	if dev, ok, err := m.Lookup(ctx, name); err != nil || ok {
		return dev, err
	}
	info, err := c.Create(ctx, name, uuidFor(name), dm.Table{plan.CloneLine(sectors, cl)})
	if err != nil {
		return "", err
	}
	return m.node(info), nil
}

// CreateLinear and a Swap to linear keep the host's write-back cache over
// dev (see initiator.KeepWriteBack): over the new LUN at finalize, over the
// old LUN in an online cutover's pass-through (plan/online.go).
func (m *mapper) CreateLinear(ctx context.Context, name string, sectors uint64, dev string) (string, error) {
	c, err := m.client()
	if err != nil {
		return "", err
	}
	if d, ok, err := m.Lookup(ctx, name); err != nil || ok {
		return d, err
	}
	if err := initiator.KeepWriteBack(m.opts.SysRoot, dev); err != nil {
		return "", err
	}
	info, err := c.Create(ctx, name, uuidFor(name), dm.Table{plan.LinearLine(sectors, dev)})
	if err != nil {
		return "", err
	}
	return m.node(info), nil
}

func (m *mapper) Swap(ctx context.Context, name string, line dm.TableLine) (time.Duration, error) {
	c, err := m.client()
	if err != nil {
		return 0, err
	}
	if lin, ok := line.Target.(dm.Linear); ok {
		if err := initiator.KeepWriteBack(m.opts.SysRoot, lin.Device); err != nil {
			return 0, err
		}
	}
	res, err := c.Replace(ctx, name, dm.Table{line}, dm.ReplaceOptions{})
	return res.Suspended, err
}

func (m *mapper) Remove(ctx context.Context, name string) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	err = c.Remove(ctx, name, dm.RemoveOptions{})
	if errors.Is(err, dm.ErrNotFound) {
		return nil
	}
	return err
}

func (m *mapper) CloneStatus(ctx context.Context, name string) (dm.CloneStatus, error) {
	c, err := m.client()
	if err != nil {
		return dm.CloneStatus{}, err
	}
	return c.CloneStatus(ctx, name)
}

func (m *mapper) Message(ctx context.Context, name, msg string) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	return c.Message(ctx, name, 0, msg)
}

func (m *mapper) List(ctx context.Context) ([]string, error) {
	c, err := m.client()
	if err != nil {
		return nil, err
	}
	l, err := c.List(ctx)
	return entryNames(l), err
}

// entryNames are the devices' names of a listing.
func entryNames(l []dm.ListEntry) []string {
	var out []string
	for _, e := range l {
		out = append(out, e.Name)
	}
	return out
}

func (m *mapper) IOCounters(ctx context.Context, name string) (dm.IOCounters, error) {
	c, err := m.client()
	if err != nil {
		return dm.IOCounters{}, err
	}
	return c.IOCounters(ctx, name)
}

func (m *mapper) CommitStatus(ctx context.Context, name string) (dm.CloneStatus, error) {
	c, err := m.client()
	if err != nil {
		return dm.CloneStatus{}, err
	}
	return c.CloneStatusCommitted(ctx, name)
}

func (m *mapper) Inspect(ctx context.Context, name string) (plan.DeviceState, bool, error) {
	c, err := m.client()
	if err != nil {
		return plan.DeviceState{}, false, err
	}
	info, active, err := c.TableInfo(ctx, name)
	if errors.Is(err, dm.ErrNotFound) {
		return plan.DeviceState{}, false, nil
	}
	if err != nil {
		return plan.DeviceState{}, false, err
	}
	d := plan.DeviceState{Node: m.node(info), Suspended: info.Suspended, Active: active}
	if info.InactivePresent {
		if d.Inactive, err = c.InactiveTable(ctx, name); err != nil {
			return plan.DeviceState{}, false, err
		}
	}
	return d, true, nil
}

func (m *mapper) Resume(ctx context.Context, name string) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	return c.Resume(ctx, name)
}

// Suspend suspends name with a flush: in-flight I/O completes first.
func (m *mapper) Suspend(ctx context.Context, name string) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	return c.Suspend(ctx, name, false)
}

// Load loads line inactive; a linear table keeps the host's write-back
// cache over its device, as Swap does.
func (m *mapper) Load(ctx context.Context, name string, line dm.TableLine) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	if lin, ok := line.Target.(dm.Linear); ok {
		if err := initiator.KeepWriteBack(m.opts.SysRoot, lin.Device); err != nil {
			return err
		}
	}
	return c.Load(ctx, name, dm.Table{line})
}

func (m *mapper) ClearInactive(ctx context.Context, name string) error {
	c, err := m.client()
	if err != nil {
		return err
	}
	return c.ClearInactive(ctx, name)
}

// mapperView, a status's snapshot of the mapper, answers Lookup and List
// from one DM_LIST_DEVICES (dm.View) instead of a DM_DEV_STATUS per
// lookup; every other call goes to the mapper.
type mapperView struct {
	*mapper
	view *dm.View
}

// Snapshot implements plan.Snapshotter.
func (m *mapper) Snapshot() plan.Mapper { return &mapperView{mapper: m} }

func (m *mapperView) dmView() (*dm.View, error) {
	if m.view == nil {
		c, err := m.client()
		if err != nil {
			return nil, err
		}
		m.view = c.View()
	}
	return m.view, nil
}

func (m *mapperView) Lookup(ctx context.Context, name string) (string, bool, error) {
	v, err := m.dmView()
	if err != nil {
		return "", false, err
	}
	e, ok, err := v.Lookup(ctx, name)
	if err != nil || !ok {
		return "", false, err
	}
	return m.nodeOf(e.Dev), true, nil
}

func (m *mapperView) List(ctx context.Context) ([]string, error) {
	v, err := m.dmView()
	if err != nil {
		return nil, err
	}
	l, err := v.List(ctx)
	return entryNames(l), err
}
