package initiator

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeepWriteBack(t *testing.T) {
	sys := t.TempDir()
	disk := func(name, wc string, scsi bool) {
		q := filepath.Join(sys, "block", name, "queue")
		require.NoError(t, os.MkdirAll(q, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(q, "write_cache"), []byte(wc+"\n"), 0o644))
		if scsi {
			d := filepath.Join(sys, "block", name, "device", "scsi_disk", "2:0:0:0")
			require.NoError(t, os.MkdirAll(d, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(d, "cache_type"), []byte("write through\n"), 0o644))
		}
	}
	disk("sda", "write back", true)
	require.NoError(t, KeepWriteBack(sys, "/dev/sda"), "already write back: nothing to do")

	disk("vdb", "write through", false)
	err := KeepWriteBack(sys, "/dev/vdb")
	require.ErrorContains(t, err, "not a SCSI disk")
	require.ErrorContains(t, err, "not swapping")

	// A fake tree does not react to the override like sd does: the
	// override is written, and the unchanged queue is reported.
	disk("sdb", "write through", true)
	err = KeepWriteBack(sys, "/dev/sdb")
	require.ErrorContains(t, err, `still reports "write through"`)
	b, err := os.ReadFile(filepath.Join(sys, "block", "sdb", "device", "scsi_disk", "2:0:0:0", "cache_type"))
	require.NoError(t, err)
	require.Equal(t, "temporary write back", string(b))
}

func TestLUNID(t *testing.T) {
	dir := t.TempDir()
	require.Equal(t, "", lunID(dir), "neither page")
	pg80 := append([]byte{0x00, 0x80, 0x00, 0x0c}, "  SN-1234\x00\x00\n"...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vpd_pg80"), pg80, 0o644))
	require.Equal(t, "serial.SN-1234", lunID(dir))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "wwid"), []byte("naa.6001405abcdef0123456789abcdef01\n"), 0o644))
	require.Equal(t, "naa.6001405abcdef0123456789abcdef01", lunID(dir), "the WWID first")

	blank := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(blank, "vpd_pg80"), []byte{0x00, 0x80, 0x00, 0x04, ' ', ' ', ' ', ' '}, 0o644))
	require.Equal(t, "", lunID(blank), "a blank serial is no identity")
}
