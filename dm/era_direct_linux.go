//go:build linux

package dm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// EraMetadataFile reads an era metadata device with O_DIRECT: dm-era
// writes its metadata below the page cache, so a buffered read could
// return blocks older than the snapshot.
type EraMetadataFile struct {
	f   *os.File
	buf []byte
}

// OpenEraMetadata opens the metadata device (a path) for
// ReadEraWrittenSince.
func OpenEraMetadata(path string) (*EraMetadataFile, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dm: open era metadata %s: %w", path, err)
	}
	buf, err := unix.Mmap(-1, 0, EraMetadataBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dm: open era metadata %s: aligned buffer: %w", path, err)
	}
	return &EraMetadataFile{f: os.NewFile(uintptr(fd), path), buf: buf}, nil
}

// ReadAt reads whole metadata blocks: p must be one block long and off a
// multiple of EraMetadataBlockSize.
func (m *EraMetadataFile) ReadAt(p []byte, off int64) (int, error) {
	if len(p) != EraMetadataBlockSize || off%EraMetadataBlockSize != 0 {
		return 0, fmt.Errorf("dm: read era metadata %s: %d bytes at %d, want one aligned block", m.f.Name(), len(p), off)
	}
	n, err := m.f.ReadAt(m.buf, off)
	if n < len(m.buf) {
		return 0, fmt.Errorf("dm: read era metadata %s at %d: %d bytes: %w", m.f.Name(), off, n, err)
	}
	return copy(p, m.buf), nil
}

// Close closes the device.
func (m *EraMetadataFile) Close() error {
	_ = unix.Munmap(m.buf)
	return m.f.Close()
}
