//go:build !linux

package initiator

func ensureDevNode(string, uint32, uint32) error { return ErrNotImplemented }

// SetReadOnly is not implemented off Linux.
func (c *Client) SetReadOnly(string) error { return ErrNotImplemented }

// SetReadWrite is not implemented off Linux.
func (c *Client) SetReadWrite(string) error { return ErrNotImplemented }

// ReadOnly is not implemented off Linux.
func (c *Client) ReadOnly(string) (bool, error) { return false, ErrNotImplemented }
