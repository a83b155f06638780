package dm

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name (a hex dump, 8 bytes a line) and
// rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	var dump strings.Builder
	for i := 0; i < len(got); i += 8 {
		dump.WriteString(hex.EncodeToString(got[i:min(i+8, len(got))]))
		dump.WriteByte('\n')
	}
	if *update {
		require.NoError(t, os.WriteFile(p, []byte(dump.String()), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test ./dm -run %s -update to create it", t.Name())
	assert.Equal(t, string(want), dump.String(), "golden %s differs; if intended, rerun with -update", p)
}

func TestIoctlRequestCodes(t *testing.T) {
	// Values of the DM_* macros with sizeof(struct dm_ioctl) == 312, as
	// libdevmapper and strace print them.
	assert.Equal(t, uint(0xc138fd00), ioctlRequest(cmdVersion))
	assert.Equal(t, uint(0xc138fd02), ioctlRequest(cmdListDevices))
	assert.Equal(t, uint(0xc138fd03), ioctlRequest(cmdDevCreate))
	assert.Equal(t, uint(0xc138fd09), ioctlRequest(cmdTableLoad))
	assert.Equal(t, uint(0xc138fd0e), ioctlRequest(cmdTargetMsg))
	assert.Equal(t, uint(0xc138fd11), ioctlRequest(cmdGetTargetVersion))
}

func TestNewRequestHeaderLayout(t *testing.T) {
	buf, err := newRequest(header{
		Version:     [3]uint32{4, 0, 0},
		Flags:       flagSuspend | flagNoFlush,
		EventNr:     7,
		TargetCount: 2,
		Dev:         0x0102,
		Name:        "lunferry-a",
		UUID:        "LUNFERRY-a",
	}, []byte{1, 2, 3}, 0)
	require.NoError(t, err)
	require.Len(t, buf, ioctlHeaderSize+3)
	// Offsets from struct dm_ioctl, checked field by field.
	assert.Equal(t, uint32(4), ne.Uint32(buf[0:]))
	assert.Equal(t, uint32(ioctlHeaderSize+3), ne.Uint32(buf[12:]), "data_size")
	assert.Equal(t, uint32(312), ne.Uint32(buf[16:]), "data_start")
	assert.Equal(t, uint32(2), ne.Uint32(buf[20:]), "target_count")
	assert.Equal(t, uint32(1<<1|1<<11), ne.Uint32(buf[28:]), "flags")
	assert.Equal(t, uint32(7), ne.Uint32(buf[32:]), "event_nr")
	assert.Equal(t, uint64(0x0102), ne.Uint64(buf[40:]), "dev")
	assert.Equal(t, "lunferry-a\x00", string(buf[48:59]), "name")
	assert.Equal(t, "LUNFERRY-a\x00", string(buf[176:187]), "uuid")
	assert.Equal(t, []byte{1, 2, 3}, buf[312:])
	golden(t, "request_header.hex", buf)

	h, err := parseHeader(buf)
	require.NoError(t, err)
	assert.Equal(t, "lunferry-a", h.Name)
	assert.Equal(t, "LUNFERRY-a", h.UUID)
	assert.Equal(t, uint32(7), h.EventNr)
}

func TestNewRequestSizesAndLimits(t *testing.T) {
	buf, err := newRequest(header{Name: "x"}, nil, 16<<10)
	require.NoError(t, err)
	assert.Len(t, buf, 16<<10)
	assert.Equal(t, uint32(16<<10), ne.Uint32(buf[offDataSize:]), "data_size covers the whole buffer so the kernel can write results")

	_, err = newRequest(header{Name: strings.Repeat("n", 128)}, nil, 0)
	assert.Error(t, err, "DM_NAME_LEN is 128 with the NUL")
	_, err = newRequest(header{Name: strings.Repeat("n", 127), UUID: strings.Repeat("u", 128)}, nil, 0)
	assert.NoError(t, err)
	_, err = newRequest(header{UUID: strings.Repeat("u", 129)}, nil, 0)
	assert.Error(t, err)
	_, err = newRequest(header{Name: "a\x00b"}, nil, 0)
	assert.Error(t, err)
}

func TestEncodeTableGolden(t *testing.T) {
	tbl := Table{
		{Start: 0, Length: 2048, Target: Linear{Device: "7:0", Offset: 0}},
		{Start: 2048, Length: 4096, Target: Clone{Metadata: "7:1", Destination: "7:2", Source: "7:3", RegionSize: 128, NoHydration: true}},
		{Start: 6144, Length: 8, Target: Error{}},
	}
	b, err := encodeTable(tbl)
	require.NoError(t, err)
	// Record 1: 40-byte spec + "7:0 0\0" (6) = 46, padded to 48.
	assert.Equal(t, uint64(0), ne.Uint64(b[0:]))
	assert.Equal(t, uint64(2048), ne.Uint64(b[8:]))
	assert.Equal(t, uint32(48), ne.Uint32(b[20:]), "next is relative to this spec on load")
	assert.Equal(t, "linear\x00", string(b[24:31]))
	assert.Equal(t, "7:0 0\x00", string(b[40:46]))
	// Record 2 at 48: params "7:1 7:2 7:3 128 1 no_hydration" (30+1) -> 40+31=71 -> 72.
	r2 := b[48:]
	assert.Equal(t, uint64(2048), ne.Uint64(r2[0:]))
	assert.Equal(t, uint32(72), ne.Uint32(r2[20:]))
	assert.Equal(t, "clone\x00", string(r2[24:30]))
	// Record 3 at 120: error with empty params: 41 -> 48.
	r3 := b[120:]
	assert.Equal(t, "error\x00", string(r3[24:30]))
	assert.Equal(t, uint32(48), ne.Uint32(r3[20:]))
	assert.Len(t, b, 168)
	for off := 0; off < len(b); off += int(ne.Uint32(b[off+20:])) {
		assert.Zero(t, off%8, "every spec is 8-byte aligned")
	}
	golden(t, "table_load.hex", b)

	_, err = encodeTable(Table{{Length: 1, Target: rawTarget{typ: "a-type-name-too-long"}}})
	assert.Error(t, err)
}

// rawTarget is a Target with arbitrary type and args, for tests.
type rawTarget struct{ typ, args string }

func (r rawTarget) Type() string           { return r.typ }
func (r rawTarget) Args() string           { return r.args }
func (r rawTarget) Validate(Sectors) error { return nil }

// kernelStatus lays out status results as drivers/md/dm-ioctl.c
// retrieve_status does: next is the offset from the start of the data.
func kernelStatus(lines []RawLine) []byte {
	var out []byte
	for _, l := range lines {
		spec := make([]byte, targetSpecSize)
		ne.PutUint64(spec[0:], uint64(l.Start))
		ne.PutUint64(spec[8:], uint64(l.Length))
		copy(spec[24:], l.Type)
		rec := append(spec, l.Params...)
		rec = append(rec, 0)
		for len(rec)%8 != 0 {
			rec = append(rec, 0)
		}
		ne.PutUint32(rec[20:], uint32(len(out)+len(rec)))
		out = append(out, rec...)
	}
	return out
}

func TestParseTargetSpecs(t *testing.T) {
	want := []RawLine{
		{Start: 0, Length: 2048, Type: "clone", Params: "8 40/4096 128 3/16 1 1 no_discard_passdown 4 hydration_threshold 64 hydration_batch_size 16 rw"},
		{Start: 2048, Length: 10, Type: "error"},
		{Start: 2058, Length: 100, Type: "linear", Params: "7:0 5"},
	}
	data := kernelStatus(want)
	golden(t, "status_result.hex", data)
	got, err := parseTargetSpecs(data, 3)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	_, err = parseTargetSpecs(data[:50], 3)
	assert.Error(t, err, "truncated data")
	got, err = parseTargetSpecs(nil, 0)
	require.NoError(t, err)
	assert.Empty(t, got)
	bad := append([]byte(nil), data...)
	ne.PutUint32(bad[20:], 0)
	_, err = parseTargetSpecs(bad, 3)
	assert.Error(t, err, "a next that does not move forward")
}

// kernelNameList lays out DM_LIST_DEVICES results as dm-ioctl.c
// list_devices does with DM_UUID_FLAG.
func kernelNameList(entries []ListEntry) []byte {
	if len(entries) == 0 {
		return make([]byte, 8)
	}
	var out []byte
	prev := -1
	for _, e := range entries {
		rec := make([]byte, 12)
		ne.PutUint64(rec, encodeDev(e.Dev))
		rec = append(rec, e.Name...)
		rec = append(rec, 0)
		for len(rec)%8 != 0 {
			rec = append(rec, 0)
		}
		tail := make([]byte, 8)
		ne.PutUint32(tail, e.EventNr)
		if e.UUID != "" {
			ne.PutUint32(tail[4:], nameListFlagHasUUID)
			tail = append(tail, e.UUID...)
			tail = append(tail, 0)
			for len(tail)%8 != 0 {
				tail = append(tail, 0)
			}
		} else {
			ne.PutUint32(tail[4:], nameListFlagNoUUID)
		}
		rec = append(rec, tail...)
		if prev >= 0 {
			ne.PutUint32(out[prev+8:], uint32(len(out)-prev))
		}
		prev = len(out)
		out = append(out, rec...)
	}
	return out
}

func TestParseNameList(t *testing.T) {
	want := []ListEntry{
		{Name: "lunferry-clone-1", UUID: "LUNFERRY-clone-1", Dev: DevNum{253, 0}, EventNr: 3},
		{Name: "vg0-root", Dev: DevNum{253, 1}},
		{Name: "lunferry-x", UUID: "LUNFERRY-" + strings.Repeat("u", 100), Dev: DevNum{253, 300}, EventNr: 1},
	}
	data := kernelNameList(want)
	golden(t, "list_devices.hex", data)
	got, err := parseNameList(data)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	got, err = parseNameList(kernelNameList(nil))
	require.NoError(t, err)
	assert.Empty(t, got, "dev 0 in the first record means no devices")
	got, err = parseNameList(nil)
	require.NoError(t, err)
	assert.Empty(t, got, "6.1 returns no data at all when there are no devices")
	_, err = parseNameList(data[:10])
	assert.Error(t, err)
}

func TestParseTargetVersions(t *testing.T) {
	var data []byte
	prev := -1
	for _, v := range []TargetVersion{{"clone", [3]uint32{2, 0, 0}}, {"snapshot-origin", [3]uint32{1, 9, 0}}, {"linear", [3]uint32{1, 4, 0}}} {
		rec := make([]byte, 16)
		ne.PutUint32(rec[4:], v.Version[0])
		ne.PutUint32(rec[8:], v.Version[1])
		ne.PutUint32(rec[12:], v.Version[2])
		rec = append(rec, v.Name...)
		rec = append(rec, 0)
		for len(rec)%8 != 0 {
			rec = append(rec, 0)
		}
		if prev >= 0 {
			ne.PutUint32(data[prev:], uint32(len(data)-prev))
		}
		prev = len(data)
		data = append(data, rec...)
	}
	got, err := parseTargetVersions(data)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, "snapshot-origin v1.9.0", got[1].String())
	assert.Equal(t, "linear", got[2].Name)
	_, err = parseTargetVersions(data[:8])
	assert.Error(t, err)
}

func TestParseDeps(t *testing.T) {
	data := make([]byte, 8+16)
	ne.PutUint32(data, 2)
	ne.PutUint64(data[8:], encodeDev(DevNum{7, 0}))
	ne.PutUint64(data[16:], encodeDev(DevNum{259, 70000}))
	got, err := parseDeps(data)
	require.NoError(t, err)
	assert.Equal(t, []DevNum{{7, 0}, {259, 70000}}, got)
	_, err = parseDeps(data[:16])
	assert.Error(t, err)
}

func TestDevNumEncoding(t *testing.T) {
	// new_encode_dev layout: minor low 8 bits, major 12 bits, minor high bits.
	assert.Equal(t, uint64(0xfd00), encodeDev(DevNum{253, 0}))
	assert.Equal(t, uint64(0x701), encodeDev(DevNum{7, 1}))
	assert.Equal(t, uint64(0x10fd34), encodeDev(DevNum{253, 0x134}))
	for _, d := range []DevNum{{0, 0}, {253, 5}, {4095, 255}, {259, 1 << 19}, {5000, 70000}} {
		assert.Equal(t, d, decodeDev(encodeDev(d)))
	}
	d, err := ParseDevNum("253:12")
	require.NoError(t, err)
	assert.Equal(t, "253:12", d.String())
	_, err = ParseDevNum("/dev/sda")
	assert.Error(t, err)
}

func TestEncodeMessage(t *testing.T) {
	b := encodeMessage(2048, "hydration_threshold 64")
	assert.Equal(t, uint64(2048), ne.Uint64(b))
	assert.True(t, bytes.HasPrefix(b[8:], []byte("hydration_threshold 64\x00")))
	assert.Zero(t, len(b)%8)
}

func TestResultData(t *testing.T) {
	buf := make([]byte, 1024)
	// No table: the kernel leaves data_size at offsetof(struct dm_ioctl,
	// data) = 305, below data_start (seen on 6.1 for a status query of an
	// empty inactive slot).
	d, err := resultData(buf, header{DataStart: 312, DataSize: 305})
	require.NoError(t, err)
	assert.Empty(t, d)
	d, err = resultData(buf, header{DataStart: 312, DataSize: 320})
	require.NoError(t, err)
	assert.Len(t, d, 8)
	_, err = resultData(buf, header{DataStart: 312, DataSize: 2048})
	assert.Error(t, err, "past the buffer")
}
