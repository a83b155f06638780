package dm

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fakeKernel is an in-memory device-mapper behind the controlFile
// interface. It decodes requests and encodes results the way
// drivers/md/dm-ioctl.c does (with the layout helpers of ioctl_test.go), so
// Client logic (retries, undo, replace failure paths) is tested without root.
type fakeKernel struct {
	mu        sync.Mutex
	devs      map[string]*fakeDev
	nextMinor uint32
	targets   map[string]bool
	// inject holds errors to return, in order, for a command.
	inject map[int][]error
	// calls records every command issued.
	calls []int
	// statusOf renders a target's status; default "type-status".
	statusOf func(l RawLine) string
	// messages records target messages as "name@sector: msg".
	messages []string
	events   chan struct{}
	// statusFlags records the flags of the last table status call.
	statusFlags uint32
}

type fakeDev struct {
	name, uuid       string
	dev              DevNum
	active, inactive []RawLine
	suspended        bool
	// busy is how many more remove attempts fail with EBUSY.
	busy  int
	event uint32
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{
		devs:    map[string]*fakeDev{},
		targets: map[string]bool{"linear": true, "error": true, "clone": true, "snapshot": true, "snapshot-origin": true, "era": true},
		inject:  map[int][]error{},
		events:  make(chan struct{}, 16),
	}
}

// fakeSys makes a sysfs tree with block devices of the given sizes.
func fakeSys(t *testing.T, sizes map[string]Sectors) string {
	t.Helper()
	root := t.TempDir()
	for dev, size := range sizes {
		d := filepath.Join(root, "dev", "block", dev)
		require.NoError(t, os.MkdirAll(d, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "size"), []byte(strconv.FormatUint(uint64(size), 10)+"\n"), 0o644))
	}
	return root
}

func newFakeClient(t *testing.T, k *fakeKernel, sizes map[string]Sectors) *Client {
	t.Helper()
	return newClient(Options{SysRoot: fakeSys(t, sizes), DevRoot: t.TempDir()}, k, func() (controlFile, error) { return k, nil })
}

func (k *fakeKernel) Close() error { return nil }

func (k *fakeKernel) waitReadable(timeout time.Duration) (bool, error) {
	select {
	case <-k.events:
		return true, nil
	case <-time.After(timeout):
		return false, nil
	}
}

// event bumps a device's event counter, as a target event would.
func (k *fakeKernel) event(name string) {
	k.mu.Lock()
	k.devs[name].event++
	k.mu.Unlock()
	k.events <- struct{}{}
}

func (k *fakeKernel) ioctl(cmd int, buf []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, cmd)
	if q := k.inject[cmd]; len(q) > 0 {
		k.inject[cmd] = q[1:]
		if q[0] != nil {
			return q[0]
		}
	}
	h, err := parseHeader(buf)
	if err != nil {
		return unix.EINVAL
	}
	if h.Version[0] != 4 || h.DataSize != uint32(len(buf)) {
		return unix.EINVAL
	}
	flags := h.Flags
	ne.PutUint32(buf[offVersion:], 4)
	ne.PutUint32(buf[offVersion+4:], 47)
	ne.PutUint32(buf[offDataSize:], ioctlHeaderSize)
	if cmd == cmdVersion {
		return nil
	}
	payload := buf[h.DataStart:]
	dev := k.devs[h.Name]
	switch cmd {
	case cmdListDevices:
		var es []ListEntry
		for _, d := range k.devs {
			es = append(es, ListEntry{Name: d.name, UUID: d.uuid, Dev: d.dev, EventNr: d.event})
		}
		return k.result(buf, flags, kernelNameList(es))
	case cmdGetTargetVersion:
		if !k.targets[h.Name] {
			return unix.EINVAL
		}
		rec := make([]byte, 16)
		ne.PutUint32(rec[4:], 1)
		rec = append(rec, h.Name...)
		rec = append(rec, make([]byte, 8-len(rec)%8)...)
		return k.result(buf, flags, rec)
	case cmdDevArmPoll:
		return nil
	case cmdDevCreate:
		if dev != nil {
			return unix.EBUSY
		}
		for _, d := range k.devs {
			if h.UUID != "" && d.uuid == h.UUID {
				return unix.EBUSY
			}
		}
		dev = &fakeDev{name: h.Name, uuid: h.UUID, dev: DevNum{253, k.nextMinor}, suspended: true}
		k.nextMinor++
		k.devs[h.Name] = dev
		k.status(buf, dev, flags)
		return nil
	}
	if dev == nil {
		return unix.ENXIO
	}
	switch cmd {
	case cmdDevStatus:
	case cmdTableLoad:
		var lines []RawLine
		off := 0
		for i := uint32(0); i < h.TargetCount; i++ {
			s := payload[off:]
			l := RawLine{Start: Sectors(ne.Uint64(s)), Length: Sectors(ne.Uint64(s[8:])), Type: cString(s[24:40]), Params: cString(s[40:])}
			if !k.targets[l.Type] || l.Params == "reject" {
				return unix.EINVAL
			}
			lines = append(lines, l)
			off += int(ne.Uint32(s[20:]))
		}
		dev.inactive = lines
	case cmdTableClear:
		dev.inactive = nil
	case cmdDevSuspend:
		if flags&flagSuspend != 0 {
			dev.suspended = true
			break
		}
		if dev.inactive != nil {
			// A table swap raises no dm event (dm-ioctl.c: only rename,
			// remove and targets call dm_table_event).
			dev.active, dev.inactive = dev.inactive, nil
		}
		dev.suspended = false
	case cmdDevRemove:
		if dev.busy > 0 {
			dev.busy--
			if flags&flagDeferredRemove != 0 {
				return nil
			}
			return unix.EBUSY
		}
		delete(k.devs, h.Name)
	case cmdTableStatus:
		k.statusFlags = flags
		k.status(buf, dev, flags)
		src := dev.active
		if flags&flagQueryInactive != 0 {
			src = dev.inactive
		}
		var out []RawLine
		for _, l := range src {
			if flags&flagStatusTable == 0 {
				if k.statusOf != nil {
					l.Params = k.statusOf(l)
				} else {
					l.Params = l.Type + "-status"
				}
			}
			out = append(out, l)
		}
		ne.PutUint32(buf[offTargetCount:], uint32(len(out)))
		return k.result(buf, ne.Uint32(buf[offFlags:]), kernelStatus(out))
	case cmdTableDeps:
		data := make([]byte, 16)
		ne.PutUint32(data, 1)
		ne.PutUint64(data[8:], encodeDev(DevNum{7, 0}))
		k.status(buf, dev, flags)
		return k.result(buf, ne.Uint32(buf[offFlags:]), data)
	case cmdTargetMsg:
		k.messages = append(k.messages, h.Name+"@"+strconv.FormatUint(ne.Uint64(payload), 10)+": "+cString(payload[8:]))
	default:
		return unix.ENOTTY
	}
	k.status(buf, dev, flags)
	return nil
}

// status writes __dev_status's fields.
func (k *fakeKernel) status(buf []byte, d *fakeDev, in uint32) {
	f := in &^ (flagSuspend | flagActivePresent | flagInactivePresent)
	if d.suspended {
		f |= flagSuspend
	}
	if d.active != nil {
		f |= flagActivePresent
	}
	if d.inactive != nil {
		f |= flagInactivePresent
	}
	ne.PutUint32(buf[offFlags:], f)
	ne.PutUint32(buf[offEventNr:], d.event)
	ne.PutUint64(buf[offDev:], encodeDev(d.dev))
	ne.PutUint32(buf[offTargetCount:], uint32(len(d.active)))
	copy(buf[offName:offName+nameLen], append([]byte(d.name), 0))
	copy(buf[offUUID:offUUID+uuidLen], append([]byte(d.uuid), 0))
}

// result places data at data_start or sets DM_BUFFER_FULL_FLAG.
func (k *fakeKernel) result(buf []byte, flags uint32, data []byte) error {
	ne.PutUint32(buf[offDataStart:], ioctlHeaderSize)
	if len(buf)-ioctlHeaderSize < len(data) {
		ne.PutUint32(buf[offFlags:], flags|flagBufferFull)
		return nil
	}
	copy(buf[ioctlHeaderSize:], data)
	ne.PutUint32(buf[offDataSize:], uint32(ioctlHeaderSize+len(data)))
	ne.PutUint32(buf[offFlags:], flags)
	return nil
}

func (k *fakeKernel) count(cmd int) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.calls {
		if c == cmd {
			n++
		}
	}
	return n
}
