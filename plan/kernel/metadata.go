package kernel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/lunferry/lunferry/dm"

	"github.com/lunferry/lunferry/internal/loop"
	"github.com/lunferry/lunferry/plan"
)

// metadata adapts loop.Devices to plan.MetadataDevices: dm-clone metadata
// in files under the state directory, attached to loop devices.
type metadata struct {
	d loop.Devices
	// view, in a snapshot, answers Attached.
	view *loop.View
}

// Snapshot implements plan.Snapshotter: one scan of the loop devices for
// a status's lookups.
func (m metadata) Snapshot() plan.MetadataDevices {
	m.view = m.d.View()
	return m
}

func (m metadata) CreateFile(ctx context.Context, path string, size uint64) (string, error) {
	return m.d.AttachFile(ctx, path, size, true)
}

func (m metadata) AttachFile(ctx context.Context, path string, size uint64) (string, error) {
	dev, err := m.d.AttachExisting(ctx, path, size)
	var short *loop.ShortFileError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%w: metadata file %s is missing: %v", plan.ErrMetadataLost, path, err)
	case errors.As(err, &short):
		return "", fmt.Errorf("%w: metadata file %s is %d bytes, it was made %d", plan.ErrMetadataLost, path, short.Size, short.Want)
	}
	return dev, err
}

func (m metadata) Attached(ctx context.Context, path string) (string, bool, error) {
	if m.view != nil {
		return m.view.Find(path)
	}
	return m.d.Find(path)
}

func (m metadata) Superblock(ctx context.Context, dev string) (dm.CloneSuperblock, error) {
	b, err := loop.ReadHead(dev, dm.CloneSuperblockSize)
	if err != nil {
		return dm.CloneSuperblock{}, err
	}
	return dm.ParseCloneSuperblock(b)
}

func (m metadata) DetachFile(ctx context.Context, path string, remove bool) error {
	return m.d.DetachFile(path, remove)
}

func (m metadata) ZeroDevice(ctx context.Context, dev string, minSize uint64) error {
	err := loop.ZeroDevice(dev, minSize)
	var small *loop.TooSmallError
	if errors.As(err, &small) {
		return fmt.Errorf("plan: metadata device %s holds %d bytes, the volume needs %d (%s): give a larger device",
			dev, small.Size, minSize, plan.Bytes(minSize))
	}
	return err
}
