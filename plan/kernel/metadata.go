package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/lunferry/lunferry/internal/loop"
	"github.com/lunferry/lunferry/plan"
)

// metadata adapts loop.Devices to plan.MetadataDevices: dm-clone metadata
// in files under the state directory, attached to loop devices.
type metadata struct{ d loop.Devices }

func (m metadata) CreateFile(ctx context.Context, path string, size uint64, zero bool) (string, error) {
	return m.d.AttachFile(ctx, path, size, zero)
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
