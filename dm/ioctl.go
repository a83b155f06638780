package dm

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Layout of include/uapi/linux/dm-ioctl.h (interface 4.x). Every ioctl
// passes one buffer: a struct dm_ioctl header, then data at data_start.
const (
	// ioctlHeaderSize is sizeof(struct dm_ioctl): 312 bytes, 8-aligned, so
	// the kernel's result data starts right after it.
	ioctlHeaderSize = 312
	// targetSpecSize is sizeof(struct dm_target_spec): sector_start u64,
	// length u64, status s32, next u32, target_type[16].
	targetSpecSize = 40
	nameLen        = 128 // DM_NAME_LEN, including the NUL
	uuidLen        = 129 // DM_UUID_LEN, including the NUL

	// struct dm_ioctl field offsets.
	offVersion     = 0  // __u32 version[3]
	offDataSize    = 12 // __u32 data_size: whole buffer, header included
	offDataStart   = 16 // __u32 data_start: offset of the data
	offTargetCount = 20 // __u32 target_count
	offOpenCount   = 24 // __s32 open_count
	offFlags       = 28 // __u32 flags
	offEventNr     = 32 // __u32 event_nr (also the udev cookie on input)
	offDev         = 40 // __u64 dev, after 4 bytes of padding
	offName        = 48 // char name[128]
	offUUID        = 176
)

// ioctl command numbers (DM_*_CMD). The request code is
// _IOWR(0xfd, nr, struct dm_ioctl); see ioctlRequest.
const (
	cmdVersion          = 0
	cmdRemoveAll        = 1
	cmdListDevices      = 2
	cmdDevCreate        = 3
	cmdDevRemove        = 4
	cmdDevRename        = 5
	cmdDevSuspend       = 6
	cmdDevStatus        = 7
	cmdDevWait          = 8
	cmdTableLoad        = 9
	cmdTableClear       = 10
	cmdTableDeps        = 11
	cmdTableStatus      = 12
	cmdListVersions     = 13
	cmdTargetMsg        = 14
	cmdDevSetGeometry   = 15
	cmdDevArmPoll       = 16
	cmdGetTargetVersion = 17
)

// cmdNames names commands in errors.
var cmdNames = [...]string{
	"version", "remove all", "list devices", "create", "remove", "rename",
	"suspend", "info", "wait", "load table", "clear table", "deps", "status",
	"list versions", "message", "set geometry", "arm poll", "target version",
}

func cmdName(cmd int) string {
	if cmd >= 0 && cmd < len(cmdNames) {
		return cmdNames[cmd]
	}
	return fmt.Sprintf("cmd %d", cmd)
}

// ioctlRequest is _IOWR(DM_IOCTL, cmd, struct dm_ioctl): direction
// read|write (3) in bits 30-31, size in bits 16-29, type 0xfd, number. The
// value is the same on architectures with the 13-bit size/3-bit direction
// layout (powerpc, mips, sparc), where read|write is 6<<29.
func ioctlRequest(cmd int) uint {
	return 3<<30 | ioctlHeaderSize<<16 | 0xfd<<8 | uint(cmd)
}

// Flags of struct dm_ioctl.
const (
	flagReadOnly         = 1 << 0
	flagSuspend          = 1 << 1
	flagPersistentDev    = 1 << 3
	flagStatusTable      = 1 << 4
	flagActivePresent    = 1 << 5
	flagInactivePresent  = 1 << 6
	flagBufferFull       = 1 << 8
	flagSkipLockfs       = 1 << 10
	flagNoFlush          = 1 << 11
	flagQueryInactive    = 1 << 12
	flagUeventGenerated  = 1 << 13
	flagUUID             = 1 << 14
	flagDataOut          = 1 << 16
	flagDeferredRemove   = 1 << 17
	flagInternalSuspend  = 1 << 18
	nameListFlagHasUUID  = 1
	nameListFlagNoUUID   = 2
	minInterfaceMajor    = 4
	defaultBufferSize    = 16 << 10
	maxBufferSize        = 64 << 20
	clientInterfaceMinor = 0
)

// ne is the kernel's (native) byte order.
var ne = binary.NativeEndian

// header is struct dm_ioctl in Go terms.
type header struct {
	Version     [3]uint32
	DataSize    uint32
	DataStart   uint32
	TargetCount uint32
	OpenCount   int32
	Flags       uint32
	EventNr     uint32
	Dev         uint64
	Name        string
	UUID        string
}

// newRequest builds an ioctl buffer of at least size bytes: h's input
// fields (version, flags, event_nr, dev, name, uuid, target_count) then
// payload at data_start. data_size is the whole buffer, so the kernel may
// write results into the space after the payload.
func newRequest(h header, payload []byte, size int) ([]byte, error) {
	if len(h.Name) >= nameLen {
		return nil, fmt.Errorf("dm: device name %q is longer than %d bytes", h.Name, nameLen-1)
	}
	if len(h.UUID) >= uuidLen {
		return nil, fmt.Errorf("dm: device uuid %q is longer than %d bytes", h.UUID, uuidLen-1)
	}
	if bytes.IndexByte([]byte(h.Name), 0) >= 0 || bytes.IndexByte([]byte(h.UUID), 0) >= 0 {
		return nil, fmt.Errorf("dm: device name or uuid contains NUL")
	}
	n := ioctlHeaderSize + len(payload)
	if size < n {
		size = n
	}
	buf := make([]byte, size)
	ne.PutUint32(buf[offVersion:], h.Version[0])
	ne.PutUint32(buf[offVersion+4:], h.Version[1])
	ne.PutUint32(buf[offVersion+8:], h.Version[2])
	ne.PutUint32(buf[offDataSize:], uint32(size))
	ne.PutUint32(buf[offDataStart:], ioctlHeaderSize)
	ne.PutUint32(buf[offTargetCount:], h.TargetCount)
	ne.PutUint32(buf[offFlags:], h.Flags)
	ne.PutUint32(buf[offEventNr:], h.EventNr)
	ne.PutUint64(buf[offDev:], h.Dev)
	copy(buf[offName:offName+nameLen], h.Name)
	copy(buf[offUUID:offUUID+uuidLen], h.UUID)
	copy(buf[ioctlHeaderSize:], payload)
	return buf, nil
}

// parseHeader reads the header the kernel wrote back.
func parseHeader(buf []byte) (header, error) {
	if len(buf) < ioctlHeaderSize {
		return header{}, fmt.Errorf("dm: ioctl buffer of %d bytes is shorter than the %d-byte header", len(buf), ioctlHeaderSize)
	}
	return header{
		Version:     [3]uint32{ne.Uint32(buf[0:]), ne.Uint32(buf[4:]), ne.Uint32(buf[8:])},
		DataSize:    ne.Uint32(buf[offDataSize:]),
		DataStart:   ne.Uint32(buf[offDataStart:]),
		TargetCount: ne.Uint32(buf[offTargetCount:]),
		OpenCount:   int32(ne.Uint32(buf[offOpenCount:])),
		Flags:       ne.Uint32(buf[offFlags:]),
		EventNr:     ne.Uint32(buf[offEventNr:]),
		Dev:         ne.Uint64(buf[offDev:]),
		Name:        cString(buf[offName : offName+nameLen]),
		UUID:        cString(buf[offUUID : offUUID+uuidLen]),
	}, nil
}

// resultData returns the kernel's output: [data_start, data_size).
func resultData(buf []byte, h header) ([]byte, error) {
	if h.DataSize <= h.DataStart {
		// Nothing written: the kernel leaves data_size at
		// offsetof(struct dm_ioctl, data) (305) when, e.g., there is no table.
		return nil, nil
	}
	if int(h.DataSize) > len(buf) {
		return nil, fmt.Errorf("dm: kernel returned data [%d, %d) outside the %d-byte buffer", h.DataStart, h.DataSize, len(buf))
	}
	return buf[h.DataStart:h.DataSize], nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func align8(n int) int { return (n + 7) &^ 7 }

// encodeTable renders a table as the DM_TABLE_LOAD payload: one
// dm_target_spec per line followed by its NUL-terminated params, padded to 8
// bytes; each spec's next is the distance from its own start to the next
// spec's start.
func encodeTable(t Table) ([]byte, error) {
	var out []byte
	for i, l := range t {
		typ := l.Target.Type()
		if len(typ) >= maxTypeName {
			return nil, fmt.Errorf("dm: line %d: target type %q is longer than %d bytes", i, typ, maxTypeName-1)
		}
		params := l.Target.Args()
		rec := align8(targetSpecSize + len(params) + 1)
		b := make([]byte, rec)
		ne.PutUint64(b[0:], uint64(l.Start))
		ne.PutUint64(b[8:], uint64(l.Length))
		// status (s32) at 16 is output only.
		ne.PutUint32(b[20:], uint32(rec))
		copy(b[24:24+maxTypeName], typ)
		copy(b[targetSpecSize:], params)
		out = append(out, b...)
	}
	return out, nil
}

// parseTargetSpecs parses count dm_target_spec records written by
// DM_TABLE_STATUS or DM_DEV_WAIT: there, each spec's next is the offset of
// the following spec from the start of the data (not from the spec).
func parseTargetSpecs(data []byte, count uint32) ([]RawLine, error) {
	lines := make([]RawLine, 0, count)
	off := 0
	for i := uint32(0); i < count; i++ {
		if off+targetSpecSize > len(data) {
			return nil, fmt.Errorf("dm: target %d at offset %d runs past the %d bytes of status data", i, off, len(data))
		}
		s := data[off:]
		params := s[targetSpecSize:]
		end := bytes.IndexByte(params, 0)
		if end < 0 {
			return nil, fmt.Errorf("dm: target %d: params are not NUL-terminated", i)
		}
		lines = append(lines, RawLine{
			Start:  Sectors(ne.Uint64(s[0:])),
			Length: Sectors(ne.Uint64(s[8:])),
			Type:   cString(s[24 : 24+maxTypeName]),
			Params: string(params[:end]),
		})
		next := int(ne.Uint32(s[20:]))
		if i+1 < count && next <= off {
			return nil, fmt.Errorf("dm: target %d: next offset %d does not move forward", i, next)
		}
		off = next
	}
	return lines, nil
}

// ListEntry is one device from List.
type ListEntry struct {
	// Name and UUID of the device (UUID empty if it has none).
	Name, UUID string
	// Dev is the block device number.
	Dev DevNum
	// EventNr is the device's event counter.
	EventNr uint32
}

// parseNameList parses DM_LIST_DEVICES output: dm_name_list records (dev
// u64, next u32, name NUL), each followed at the next 8-byte boundary by
// event_nr u32, flags u32 and, with DM_NAME_LIST_FLAG_HAS_UUID, the uuid.
// next is relative to the record and 0 on the last; a first record with
// dev 0 means no devices.
func parseNameList(data []byte) ([]ListEntry, error) {
	// With no devices at all the kernel (6.1 list_devices) sets data_size
	// to data_start: zero bytes, though it wrote dev = 0 into the buffer.
	if len(data) == 0 {
		return nil, nil
	}
	var out []ListEntry
	off := 0
	for {
		if off+12 > len(data) {
			if off == 0 && len(data) >= 8 && ne.Uint64(data) == 0 {
				return nil, nil
			}
			return nil, fmt.Errorf("dm: device list record at %d runs past %d bytes", off, len(data))
		}
		r := data[off:]
		dev := ne.Uint64(r[0:])
		next := int(ne.Uint32(r[8:]))
		if off == 0 && dev == 0 {
			return nil, nil
		}
		nameEnd := bytes.IndexByte(r[12:], 0)
		if nameEnd < 0 {
			return nil, fmt.Errorf("dm: device list record at %d: name not NUL-terminated", off)
		}
		e := ListEntry{Name: string(r[12 : 12+nameEnd]), Dev: decodeDev(dev)}
		p := align8(12 + nameEnd + 1)
		if p+8 <= len(r) && (next == 0 || p+8 <= next) {
			e.EventNr = ne.Uint32(r[p:])
			flags := ne.Uint32(r[p+4:])
			if flags&nameListFlagHasUUID != 0 {
				u := r[p+8:]
				if next != 0 && next-(p+8) < len(u) {
					u = u[:next-(p+8)]
				}
				e.UUID = cString(u)
			}
		}
		out = append(out, e)
		if next == 0 {
			return out, nil
		}
		off += next
	}
}

// TargetVersion is a target type the kernel has registered, with its version.
type TargetVersion struct {
	Name    string
	Version [3]uint32
}

// String renders "name vX.Y.Z" as dmsetup targets does.
func (t TargetVersion) String() string {
	return fmt.Sprintf("%s v%d.%d.%d", t.Name, t.Version[0], t.Version[1], t.Version[2])
}

// parseTargetVersions parses DM_LIST_VERSIONS / DM_GET_TARGET_VERSION
// output: dm_target_versions records (next u32, version u32[3], name NUL,
// padded to 8), next relative to the record and 0 on the last.
func parseTargetVersions(data []byte) ([]TargetVersion, error) {
	var out []TargetVersion
	off := 0
	for {
		if off+16 > len(data) {
			return nil, fmt.Errorf("dm: target version record at %d runs past %d bytes", off, len(data))
		}
		r := data[off:]
		next := int(ne.Uint32(r[0:]))
		end := bytes.IndexByte(r[16:], 0)
		if end < 0 {
			return nil, fmt.Errorf("dm: target version record at %d: name not NUL-terminated", off)
		}
		out = append(out, TargetVersion{
			Name:    string(r[16 : 16+end]),
			Version: [3]uint32{ne.Uint32(r[4:]), ne.Uint32(r[8:]), ne.Uint32(r[12:])},
		})
		if next == 0 {
			return out, nil
		}
		off += next
	}
}

// parseDeps parses DM_TABLE_DEPS output: struct dm_target_deps (count u32,
// padding u32, dev u64[count]).
func parseDeps(data []byte) ([]DevNum, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("dm: deps data of %d bytes is too short", len(data))
	}
	n := int(ne.Uint32(data))
	if 8+8*n > len(data) {
		return nil, fmt.Errorf("dm: deps count %d runs past %d bytes", n, len(data))
	}
	out := make([]DevNum, n)
	for i := range out {
		out[i] = decodeDev(ne.Uint64(data[8+8*i:]))
	}
	return out, nil
}

// encodeMessage renders the DM_TARGET_MSG payload: struct dm_target_msg
// (sector u64) then the NUL-terminated message.
func encodeMessage(sector Sectors, msg string) []byte {
	b := make([]byte, align8(8+len(msg)+1))
	ne.PutUint64(b, uint64(sector))
	copy(b[8:], msg)
	return b
}

// DevNum is a block device number.
type DevNum struct {
	Major, Minor uint32
}

// String renders "MAJ:MIN", the form table args and sysfs use.
func (d DevNum) String() string { return fmt.Sprintf("%d:%d", d.Major, d.Minor) }

// Mkdev returns d in the encoding of stat's st_rdev and mknod.
func (d DevNum) Mkdev() uint64 {
	return uint64(d.Minor&0xff) | uint64(d.Major&0xfff)<<8 |
		uint64(d.Minor&^0xff)<<12 | uint64(d.Major&^0xfff)<<32
}

// decodeDev decodes the kernel's huge_encode_dev (the same bit layout as
// st_rdev for 32-bit numbers).
func decodeDev(v uint64) DevNum {
	return DevNum{
		Major: uint32((v>>8)&0xfff) | uint32(v>>32)&^0xfff,
		Minor: uint32(v&0xff) | uint32(v>>12)&^0xff,
	}
}

// encodeDev is decodeDev's inverse.
func encodeDev(d DevNum) uint64 { return d.Mkdev() }
