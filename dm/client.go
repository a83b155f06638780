package dm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Name and UUID prefixes of every device lunferry creates. Remove and
// Replace refuse devices without them unless forced.
const (
	NamePrefix = "lunferry-"
	UUIDPrefix = "LUNFERRY-"
)

// controlFile is the narrow kernel interface the Client drives: one open
// /dev/mapper/control.
type controlFile interface {
	// ioctl runs device-mapper command cmd on buf; errors are unix.Errno.
	ioctl(cmd int, buf []byte) error
	// waitReadable waits up to timeout for an event armed by DM_DEV_ARM_POLL.
	waitReadable(timeout time.Duration) (bool, error)
	// Close releases the file.
	Close() error
}

// Options configure a Client. Zero values take the defaults.
type Options struct {
	// ControlPath is the control node; default DevRoot/mapper/control. It
	// is made from SysRoot/class/misc/device-mapper/dev when missing.
	ControlPath string
	// SysRoot is where sysfs is mounted; default /sys.
	SysRoot string
	// DevRoot is the device directory; default /dev.
	DevRoot string
	// RunRoot is where udev keeps its control socket (RunRoot/udev/control
	// exists while udev runs); default /run.
	RunRoot string
	// UdevWait is how long DevicePath waits for udev to make
	// /dev/mapper/NAME when udev runs; default 2s.
	UdevWait time.Duration
}

func (o Options) withDefaults() Options {
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.RunRoot == "" {
		o.RunRoot = "/run"
	}
	if o.UdevWait <= 0 {
		o.UdevWait = 2 * time.Second
	}
	if o.ControlPath == "" {
		o.ControlPath = filepath.Join(o.DevRoot, "mapper", "control")
	}
	return o
}

// Client is a handle on the device-mapper control node. It is safe for
// concurrent use.
type Client struct {
	opts Options
	ctl  controlFile
	// open opens another control file, for WaitEvent's own poll state.
	open func() (controlFile, error)
	mu   sync.Mutex // guards closed
	shut bool
}

// Open opens the control node, making it from sysfs first when it is
// missing (no udev).
func Open(opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if err := ensureControlNode(opts); err != nil {
		return nil, err
	}
	ctl, err := openControl(opts.ControlPath)
	if err != nil {
		switch {
		case errors.Is(err, ErrNotImplemented):
			return nil, err
		case errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO):
			return nil, fmt.Errorf("dm: open %s: %w (device-mapper is not loaded: run \"modprobe dm_mod\")", opts.ControlPath, err)
		}
		return nil, fmt.Errorf("dm: open %s: %w (lunferry must run as root)", opts.ControlPath, err)
	}
	return newClient(opts, ctl, func() (controlFile, error) { return openControl(opts.ControlPath) }), nil
}

func newClient(opts Options, ctl controlFile, open func() (controlFile, error)) *Client {
	return &Client{opts: opts.withDefaults(), ctl: ctl, open: open}
}

// Close releases the control node.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shut {
		return nil
	}
	c.shut = true
	return c.ctl.Close()
}

// ensureControlNode makes the control character device from sysfs when it
// is missing.
func ensureControlNode(o Options) error {
	kind, _, err := statNode(o.ControlPath)
	if err != nil {
		return fmt.Errorf("dm: stat %s: %w", o.ControlPath, err)
	}
	if kind == nodeChar {
		return nil
	}
	if kind != nodeMissing {
		return fmt.Errorf("dm: %s exists but is not a character device; remove it and retry", o.ControlPath)
	}
	miscDev := filepath.Join(o.SysRoot, "class", "misc", "device-mapper", "dev")
	d, err := readDevFile(miscDev)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("dm: %s is missing and %s does not exist: device-mapper is not in the running kernel; load it with \"modprobe dm_mod\"", o.ControlPath, miscDev)
		}
		return fmt.Errorf("dm: make control node: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(o.ControlPath), 0o755); err != nil {
		return fmt.Errorf("dm: make control node: %w", err)
	}
	if err := mknod(o.ControlPath, false, d); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("dm: make control node %s (%s): %w", o.ControlPath, d, err)
	}
	return nil
}

// Info is a device's state, from DM_DEV_STATUS and every command that
// returns it.
type Info struct {
	// Name and UUID of the device.
	Name, UUID string
	// Dev is the block device number (dm-N has minor N).
	Dev DevNum
	// OpenCount is how many openers the device has (mounts, LIO, dm
	// devices stacked on it): a device with openers cannot be removed.
	OpenCount int32
	// EventNr counts the device's dm events: raised by targets (dm-clone
	// when hydration finishes or the metadata mode changes, a snapshot
	// becoming invalid) and by rename; not by loading or swapping tables.
	EventNr uint32
	// TargetCount is the number of lines of the active table.
	TargetCount uint32
	// Suspended: I/O is queued until Resume.
	Suspended bool
	// ReadOnly: the device was made read only.
	ReadOnly bool
	// ActivePresent and InactivePresent report which table slots are filled.
	ActivePresent, InactivePresent bool
	// DeferredRemove: the device will be removed when its last opener closes.
	DeferredRemove bool
}

func infoFromHeader(h header) Info {
	return Info{
		Name:            h.Name,
		UUID:            h.UUID,
		Dev:             decodeDev(h.Dev),
		OpenCount:       h.OpenCount,
		EventNr:         h.EventNr,
		TargetCount:     h.TargetCount,
		Suspended:       h.Flags&flagSuspend != 0,
		ReadOnly:        h.Flags&flagReadOnly != 0,
		ActivePresent:   h.Flags&flagActivePresent != 0,
		InactivePresent: h.Flags&flagInactivePresent != 0,
		DeferredRemove:  h.Flags&flagDeferredRemove != 0,
	}
}

// Owned reports whether the device carries both lunferry prefixes.
func (i Info) Owned() bool { return Owned(i.Name, i.UUID) }

// Owned reports whether name and uuid carry NamePrefix and UUIDPrefix.
func Owned(name, uuid string) bool {
	return strings.HasPrefix(name, NamePrefix) && strings.HasPrefix(uuid, UUIDPrefix)
}

// Version is the kernel's ioctl interface version (major, minor, patch).
type Version [3]uint32

// String renders "4.47.0".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// call runs one ioctl. h carries the name and input flags; with wantData
// the buffer starts at defaultBufferSize and doubles while the kernel sets
// DM_BUFFER_FULL_FLAG. It returns the header the kernel wrote back and a
// copy of the result data.
func (c *Client) call(ctx context.Context, cmd int, h header, payload []byte, wantData bool) (header, []byte, error) {
	if err := ctx.Err(); err != nil {
		return header{}, nil, err
	}
	h.Version = [3]uint32{minInterfaceMajor, clientInterfaceMinor, 0}
	size := 0
	if wantData {
		size = defaultBufferSize
	}
	for {
		buf, err := newRequest(h, payload, size)
		if err != nil {
			return header{}, nil, err
		}
		if err := c.ctl.ioctl(cmd, buf); err != nil {
			return header{}, nil, err
		}
		out, err := parseHeader(buf)
		if err != nil {
			return header{}, nil, err
		}
		if out.Flags&flagBufferFull != 0 && wantData {
			if len(buf) >= maxBufferSize {
				return header{}, nil, fmt.Errorf("dm: %s: kernel result does not fit in %d bytes", cmdName(cmd), maxBufferSize)
			}
			size = 2 * len(buf)
			continue
		}
		if !wantData {
			return out, nil, nil
		}
		data, err := resultData(buf, out)
		if err != nil {
			return header{}, nil, err
		}
		return out, append([]byte(nil), data...), nil
	}
}

// kernelErr wraps a failed ioctl with the operation, the device, the
// sentinel callers branch on and a hint, keeping the errno in the chain.
func kernelErr(op, name string, err error) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("dm: %s %s: %w", op, name, err)
	}
	switch {
	case errno == unix.ENXIO:
		return fmt.Errorf("dm: %s %s: %w: %w (list devices with \"dmsetup ls\")", op, name, ErrNotFound, errno)
	case errno == unix.EBUSY && op == "create":
		return fmt.Errorf("dm: %s %s: %w: %w (a device with this name or uuid exists: remove it or pick another name)", op, name, ErrExists, errno)
	case errno == unix.EBUSY:
		return fmt.Errorf("dm: %s %s: %w: %w (something holds it open: unmount it, remove LIO backstores and dm devices on top of it, see /sys/block/dm-N/holders)", op, name, ErrBusy, errno)
	case errno == unix.EACCES || errno == unix.EPERM:
		return fmt.Errorf("dm: %s %s: %w (device-mapper needs root / CAP_SYS_ADMIN)", op, name, errno)
	}
	return fmt.Errorf("dm: %s %s: %w", op, name, errno)
}

// Version returns the kernel's ioctl interface version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	h, _, err := c.call(ctx, cmdVersion, header{}, nil, false)
	if err != nil {
		return Version{}, kernelErr("version", "", err)
	}
	return Version(h.Version), nil
}

// List returns every device-mapper device, lunferry's or not, with UUIDs.
func (c *Client) List(ctx context.Context) ([]ListEntry, error) {
	_, data, err := c.call(ctx, cmdListDevices, header{Flags: flagUUID}, nil, true)
	if err != nil {
		return nil, kernelErr("list", "devices", err)
	}
	return parseNameList(data)
}

// TargetVersions lists the target types the kernel has registered now
// (modules not yet loaded are not listed).
func (c *Client) TargetVersions(ctx context.Context) ([]TargetVersion, error) {
	_, data, err := c.call(ctx, cmdListVersions, header{}, nil, true)
	if err != nil {
		return nil, kernelErr("list", "target versions", err)
	}
	return parseTargetVersions(data)
}

// TargetVersion returns the version of one target type; the kernel loads
// its module on demand if it can. A type the kernel cannot provide gives a
// *TargetMissingError naming the module.
func (c *Client) TargetVersion(ctx context.Context, targetType string) (TargetVersion, error) {
	if len(targetType) >= nameLen {
		return TargetVersion{}, fmt.Errorf("dm: target type %q too long", targetType)
	}
	_, data, err := c.call(ctx, cmdGetTargetVersion, header{Name: targetType}, nil, true)
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return TargetVersion{}, fmt.Errorf("%w: %w", &TargetMissingError{Type: targetType, Module: moduleFor(targetType)}, err)
		}
		return TargetVersion{}, kernelErr("target version", targetType, err)
	}
	v, err := parseTargetVersions(data)
	if err != nil {
		return TargetVersion{}, err
	}
	return v[0], nil
}

// Info returns the state of the named device.
func (c *Client) Info(ctx context.Context, name string) (Info, error) {
	h, _, err := c.call(ctx, cmdDevStatus, header{Name: name}, nil, false)
	if err != nil {
		return Info{}, kernelErr("info", name, err)
	}
	return infoFromHeader(h), nil
}

// Create makes a device, loads table into it and resumes it, so it serves
// I/O when Create returns. name must start with NamePrefix and uuid with
// UUIDPrefix. If any step fails, what Create made is removed again.
func (c *Client) Create(ctx context.Context, name, uuid string, table Table) (Info, error) {
	if !strings.HasPrefix(name, NamePrefix) || !strings.HasPrefix(uuid, UUIDPrefix) {
		return Info{}, fmt.Errorf("dm: create %s: name must start with %q and uuid (%q) with %q: %w",
			name, NamePrefix, uuid, UUIDPrefix, ErrNotOwned)
	}
	if err := c.checkTable(name, table); err != nil {
		return Info{}, err
	}
	if _, _, err := c.call(ctx, cmdDevCreate, header{Name: name, UUID: uuid}, nil, false); err != nil {
		return Info{}, kernelErr("create", name, err)
	}
	undo := func(cause error) (Info, error) {
		// Best effort, with a fresh context: the caller's may be done.
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if rerr := c.remove(rctx, name, RemoveOptions{Force: true}); rerr != nil {
			return Info{}, fmt.Errorf("%w; removing the half-made device also failed: %v (remove it with \"dmsetup remove %s\")", cause, rerr, name)
		}
		return Info{}, cause
	}
	if err := c.Load(ctx, name, table); err != nil {
		return undo(err)
	}
	if err := c.Resume(ctx, name); err != nil {
		return undo(err)
	}
	info, err := c.Info(ctx, name)
	if err != nil {
		return undo(err)
	}
	return info, nil
}

// checkTable validates the table and, through sysfs, that every device is
// large enough for the range it backs.
func (c *Client) checkTable(name string, table Table) error {
	if err := table.Validate(); err != nil {
		return fmt.Errorf("dm: table for %s: %w", name, err)
	}
	for i, l := range table {
		st, ok := l.Target.(sizedTarget)
		if !ok {
			continue
		}
		for _, need := range st.sizeNeeds(l.Length) {
			size, err := c.deviceSize(need.device)
			if err != nil {
				return fmt.Errorf("dm: table for %s: line %d: %s %s: %w", name, i, need.role, need.device, err)
			}
			if size < need.min {
				return fmt.Errorf("dm: table for %s: %w: line %d: %s %s has %d sectors, needs at least %d",
					name, ErrInvalidTable, i, need.role, need.device, size, need.min)
			}
		}
	}
	return nil
}

// Load validates table and loads it into the device's inactive slot; the
// device keeps serving its active table until Resume. A table the kernel
// refuses gives a *TableRejectedError, or a *TargetMissingError when a
// target type is not in the kernel.
func (c *Client) Load(ctx context.Context, name string, table Table) error {
	if err := c.checkTable(name, table); err != nil {
		return err
	}
	payload, err := encodeTable(table)
	if err != nil {
		return err
	}
	_, _, err = c.call(ctx, cmdTableLoad, header{Name: name, TargetCount: uint32(len(table))}, payload, false)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENXIO) {
		return kernelErr("load table", name, err)
	}
	seen := map[string]bool{}
	for _, l := range table {
		t := l.Target.Type()
		if seen[t] {
			continue
		}
		seen[t] = true
		var missing *TargetMissingError
		if _, verr := c.TargetVersion(ctx, t); errors.As(verr, &missing) {
			return fmt.Errorf("dm: load table %s: %w: %w", name, missing, err)
		}
	}
	return &TableRejectedError{Name: name, Table: table.String(), Err: err}
}

// ClearInactive drops the table in the inactive slot, if any.
func (c *Client) ClearInactive(ctx context.Context, name string) error {
	if _, _, err := c.call(ctx, cmdTableClear, header{Name: name}, nil, false); err != nil {
		return kernelErr("clear inactive table", name, err)
	}
	return nil
}

// Suspend stops I/O to the device: new I/O queues until Resume. By default
// it waits for in-flight I/O to complete (flush); with noFlush in-flight
// I/O is requeued instead, for targets that cannot complete it.
func (c *Client) Suspend(ctx context.Context, name string, noFlush bool) error {
	flags := uint32(flagSuspend)
	if noFlush {
		flags |= flagNoFlush
	}
	if _, _, err := c.call(ctx, cmdDevSuspend, header{Name: name, Flags: flags}, nil, false); err != nil {
		return kernelErr("suspend", name, err)
	}
	return nil
}

// Resume makes the inactive table (if one is loaded) active and lets
// queued I/O run. Resuming a device that is not suspended is not an error.
func (c *Client) Resume(ctx context.Context, name string) error {
	if _, _, err := c.call(ctx, cmdDevSuspend, header{Name: name}, nil, false); err != nil {
		return kernelErr("resume", name, err)
	}
	return nil
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	// Force removes a device that lacks lunferry's prefixes.
	Force bool
	// Deferred asks the kernel to remove the device when its last opener
	// closes, if it is busy now; Remove then returns nil.
	Deferred bool
	// Retries is how many more times to try after EBUSY (openers such as
	// blkid or a closing LIO backstore often let go within a second). Zero
	// means DefaultRemoveRetries; negative means no retry.
	Retries int
	// RetryDelay is the first wait between tries, doubling each time; zero
	// means 100ms.
	RetryDelay time.Duration
}

// DefaultRemoveRetries is the number of retries on EBUSY when
// RemoveOptions.Retries is zero.
const DefaultRemoveRetries = 5

// Remove removes the device. It refuses devices without lunferry's name
// and UUID prefixes unless opts.Force; it retries on EBUSY; it removes the
// /dev/mapper node it made for the device when udev is absent. A device
// that is already gone gives ErrNotFound.
func (c *Client) Remove(ctx context.Context, name string, opts RemoveOptions) error {
	return c.remove(ctx, name, opts)
}

func (c *Client) remove(ctx context.Context, name string, opts RemoveOptions) error {
	info, err := c.Info(ctx, name)
	if err != nil {
		return fmt.Errorf("dm: remove %s: %w", name, err)
	}
	if !opts.Force && !info.Owned() {
		return fmt.Errorf("dm: remove %s (uuid %q): %w; lunferry removes only devices named %s* with uuid %s*",
			name, info.UUID, ErrNotOwned, NamePrefix, UUIDPrefix)
	}
	retries := opts.Retries
	if retries == 0 {
		retries = DefaultRemoveRetries
	}
	delay := opts.RetryDelay
	if delay <= 0 {
		delay = 100 * time.Millisecond
	}
	flags := uint32(0)
	if opts.Deferred {
		flags |= flagDeferredRemove
	}
	for attempt := 0; ; attempt++ {
		_, _, err = c.call(ctx, cmdDevRemove, header{Name: name, Flags: flags}, nil, false)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EBUSY) || attempt >= retries {
			return kernelErr("remove", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dm: remove %s: %w (last try: %w)", name, ctx.Err(), kernelErr("remove", name, err))
		case <-time.After(delay):
		}
		delay *= 2
	}
	if opts.Deferred {
		// The kernel may only have scheduled the removal: keep the node
		// while the device exists.
		if _, err := c.Info(ctx, name); !errors.Is(err, ErrNotFound) {
			return nil
		}
	}
	c.removeNode(name, info.Dev)
	return nil
}

// Table returns the active table as the kernel reports it (devices as
// MAJ:MIN), what dmsetup table prints.
func (c *Client) Table(ctx context.Context, name string) ([]RawLine, error) {
	return c.status(ctx, "table", name, flagStatusTable)
}

// TableInfo returns the device's state and its active table (nil when
// none is loaded) from one DM_TABLE_STATUS: the kernel fills the header
// as DM_DEV_STATUS does (dm-ioctl.c table_status calls __dev_status), so
// a look at a device costs one ioctl, not two, and the state and the
// table are of the same moment.
func (c *Client) TableInfo(ctx context.Context, name string) (Info, []RawLine, error) {
	h, data, err := c.call(ctx, cmdTableStatus, header{Name: name, Flags: flagStatusTable}, nil, true)
	if err != nil {
		return Info{}, nil, kernelErr("table", name, err)
	}
	info := infoFromHeader(h)
	if !info.ActivePresent {
		return info, nil, nil
	}
	lines, err := parseTargetSpecs(data, h.TargetCount)
	if err != nil {
		return Info{}, nil, fmt.Errorf("dm: table %s: %w", name, err)
	}
	return info, lines, nil
}

// InactiveTable returns the table loaded in the inactive slot (empty if none).
func (c *Client) InactiveTable(ctx context.Context, name string) ([]RawLine, error) {
	return c.status(ctx, "inactive table", name, flagStatusTable|flagQueryInactive)
}

// Status returns each target's status line, what dmsetup status prints.
// Like dmsetup it lets targets commit first: dm-clone commits its metadata
// and flushes the destination on every such read.
func (c *Client) Status(ctx context.Context, name string) ([]RawLine, error) {
	return c.status(ctx, "status", name, 0)
}

// StatusNoFlush is Status with DM_NOFLUSH_FLAG (dmsetup status --noflush):
// targets report without committing. For polling: dm-clone commits its
// metadata every second by itself, so a flushing read per poll only adds a
// metadata write and a cache flush on the new LUN.
func (c *Client) StatusNoFlush(ctx context.Context, name string) ([]RawLine, error) {
	return c.status(ctx, "status", name, flagNoFlush)
}

func (c *Client) status(ctx context.Context, op, name string, flags uint32) ([]RawLine, error) {
	h, data, err := c.call(ctx, cmdTableStatus, header{Name: name, Flags: flags}, nil, true)
	if err != nil {
		return nil, kernelErr(op, name, err)
	}
	if flags&flagQueryInactive != 0 && h.Flags&flagInactivePresent == 0 {
		return nil, nil
	}
	lines, err := parseTargetSpecs(data, h.TargetCount)
	if err != nil {
		return nil, fmt.Errorf("dm: %s %s: %w", op, name, err)
	}
	return lines, nil
}

// statusOf returns the params of the first status line of type typ.
func (c *Client) statusOf(ctx context.Context, name, typ string) (string, error) {
	lines, err := c.StatusNoFlush(ctx, name)
	if err != nil {
		return "", err
	}
	for _, l := range lines {
		if l.Type == typ {
			return l.Params, nil
		}
	}
	return "", fmt.Errorf("dm: status %s: the device has no %s target (its active table has %d lines)", name, typ, len(lines))
}

// CloneStatus returns the parsed status of the device's clone target. It
// reads without a metadata commit (see StatusNoFlush), so it is cheap to poll.
func (c *Client) CloneStatus(ctx context.Context, name string) (CloneStatus, error) {
	p, err := c.statusOf(ctx, name, "clone")
	if err != nil {
		return CloneStatus{}, err
	}
	return ParseCloneStatus(p)
}

// CloneStatusCommitted is CloneStatus read like dmsetup status, without
// DM_NOFLUSH: dm-clone commits its metadata first, so what it reports
// survives a power loss.
func (c *Client) CloneStatusCommitted(ctx context.Context, name string) (CloneStatus, error) {
	lines, err := c.Status(ctx, name)
	if err != nil {
		return CloneStatus{}, err
	}
	for _, l := range lines {
		if l.Type == "clone" {
			return ParseCloneStatus(l.Params)
		}
	}
	return CloneStatus{}, fmt.Errorf("dm: status %s: the device has no clone target (its active table has %d lines)", name, len(lines))
}

// SnapshotStatus returns the parsed status of the device's snapshot target.
func (c *Client) SnapshotStatus(ctx context.Context, name string) (SnapshotStatus, error) {
	p, err := c.statusOf(ctx, name, "snapshot")
	if err != nil {
		return SnapshotStatus{}, err
	}
	return ParseSnapshotStatus(p)
}

// EraStatus returns the parsed status of the device's era target.
func (c *Client) EraStatus(ctx context.Context, name string) (EraStatus, error) {
	p, err := c.statusOf(ctx, name, "era")
	if err != nil {
		return EraStatus{}, err
	}
	return ParseEraStatus(p)
}

// Deps returns the devices the active table uses.
func (c *Client) Deps(ctx context.Context, name string) ([]DevNum, error) {
	_, data, err := c.call(ctx, cmdTableDeps, header{Name: name}, nil, true)
	if err != nil {
		return nil, kernelErr("deps", name, err)
	}
	return parseDeps(data)
}

// Message sends msg to the target that maps sector of the device (0 for
// single-target tables), like dmsetup message.
func (c *Client) Message(ctx context.Context, name string, sector Sectors, msg string) error {
	if strings.TrimSpace(msg) == "" {
		return fmt.Errorf("dm: message %s: empty message", name)
	}
	if _, _, err := c.call(ctx, cmdTargetMsg, header{Name: name}, encodeMessage(sector, msg), false); err != nil {
		return fmt.Errorf("dm: message %s %q: %w", name, msg, kernelErr("message", name, err))
	}
	return nil
}

// EnableHydration starts background hydration of a clone device.
func (c *Client) EnableHydration(ctx context.Context, name string) error {
	return c.Message(ctx, name, 0, MsgEnableHydration)
}

// DisableHydration stops background hydration of a clone device.
func (c *Client) DisableHydration(ctx context.Context, name string) error {
	return c.Message(ctx, name, 0, MsgDisableHydration)
}

// SetHydrationThreshold sets how many regions a clone device copies at once.
func (c *Client) SetHydrationThreshold(ctx context.Context, name string, regions uint) error {
	return c.Message(ctx, name, 0, MsgHydrationThreshold(regions))
}

// SetHydrationBatchSize sets how many contiguous regions a clone device
// batches per copy.
func (c *Client) SetHydrationBatchSize(ctx context.Context, name string, regions uint) error {
	return c.Message(ctx, name, 0, MsgHydrationBatchSize(regions))
}

// eventPollSlice bounds each poll so a missed wake-up costs at most this.
const eventPollSlice = 250 * time.Millisecond

// WaitEvent waits until the device's event counter differs from eventNr
// (take it from Info) and returns the new Info. Events come from targets,
// such as dm-clone finishing hydration or changing metadata mode (see
// Info.EventNr); a table swap raises none. It polls the control node (DM_DEV_ARM_POLL) instead of blocking in
// DM_DEV_WAIT, so ctx can cancel it.
func (c *Client) WaitEvent(ctx context.Context, name string, eventNr uint32) (Info, error) {
	f, err := c.open()
	if err != nil {
		return Info{}, fmt.Errorf("dm: wait event %s: open control: %w", name, err)
	}
	defer f.Close()
	w := &Client{opts: c.opts, ctl: f, open: c.open}
	for {
		// Arm first, then look: an event between the two still wakes poll.
		if _, _, err := w.call(ctx, cmdDevArmPoll, header{}, nil, false); err != nil {
			return Info{}, kernelErr("arm poll", name, err)
		}
		info, err := w.Info(ctx, name)
		if err != nil {
			return Info{}, fmt.Errorf("dm: wait event: %w", err)
		}
		if info.EventNr != eventNr {
			return info, nil
		}
		timeout := eventPollSlice
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
			timeout = max(time.Until(dl), time.Millisecond)
		}
		if _, err := f.waitReadable(timeout); err != nil {
			return Info{}, fmt.Errorf("dm: wait event %s: poll: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return Info{}, fmt.Errorf("dm: wait event %s (event %d): %w", name, eventNr, err)
		}
	}
}
