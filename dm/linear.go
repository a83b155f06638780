package dm

import "fmt"

// Linear maps the range onto Device starting at Offset.
//
// Table args: <device> <offset>
type Linear struct {
	// Device is a /dev path or MAJ:MIN.
	Device string
	// Offset is the first sector used on Device.
	Offset Sectors
}

// Type returns "linear".
func (Linear) Type() string { return "linear" }

// Args renders "<device> <offset>".
func (l Linear) Args() string { return fmt.Sprintf("%s %d", l.Device, l.Offset) }

// Validate checks the device argument.
func (l Linear) Validate(Sectors) error { return checkDevice("linear", l.Device) }

func (l Linear) sizeNeeds(length Sectors) []sizeNeed {
	return []sizeNeed{{role: "linear", device: l.Device, min: l.Offset + length}}
}
