//go:build !linux

package dm

// EraMetadataFile reads an era metadata device; Linux only.
type EraMetadataFile struct{}

// OpenEraMetadata is not available off Linux.
func OpenEraMetadata(string) (*EraMetadataFile, error) { return nil, ErrNotImplemented }

// ReadAt is not available off Linux.
func (*EraMetadataFile) ReadAt([]byte, int64) (int, error) { return 0, ErrNotImplemented }

// Close does nothing.
func (*EraMetadataFile) Close() error { return nil }
