package dm

// Error fails every I/O to its range. It takes no arguments; lunferry uses it
// to fence a device whose data must not be served.
type Error struct{}

// Type returns "error".
func (Error) Type() string { return "error" }

// Args renders nothing: the target takes no arguments.
func (Error) Args() string { return "" }

// Validate accepts any length.
func (Error) Validate(Sectors) error { return nil }
