package dm

import (
	"fmt"
	"strconv"
	"strings"
)

// maxTypeName is DM_MAX_TYPE_NAME: a target type name and its NUL.
const maxTypeName = 16

// Target is one device-mapper target type with its constructor arguments.
// Each implementation lives in its own file.
type Target interface {
	// Type is the kernel's target type name, e.g. "linear".
	Type() string
	// Args renders the constructor arguments that follow the type in a
	// table line.
	Args() string
	// Validate checks the arguments against the kernel's rules for a
	// target of the given length, before the kernel sees them.
	Validate(length Sectors) error
}

// sizedTarget is implemented by targets whose devices must be at least as
// large as the range they map; Client.Load checks it against sysfs.
type sizedTarget interface {
	// sizeNeeds returns, for a target of the given length, each device and
	// the number of sectors it must hold.
	sizeNeeds(length Sectors) []sizeNeed
}

// sizeNeed is a device and the sectors it must hold.
type sizeNeed struct {
	role   string
	device string
	min    Sectors
}

// TableLine is one line of a device-mapper table: Target maps the sectors
// [Start, Start+Length) of the device.
type TableLine struct {
	Start  Sectors
	Length Sectors
	Target Target
}

// String renders "start length type args", the dmsetup table format.
func (l TableLine) String() string {
	args := l.Target.Args()
	if args == "" {
		return fmt.Sprintf("%d %d %s", l.Start, l.Length, l.Target.Type())
	}
	return fmt.Sprintf("%d %d %s %s", l.Start, l.Length, l.Target.Type(), args)
}

// Table is a device-mapper table: lines in order, contiguous from sector 0.
type Table []TableLine

// String renders the table as dmsetup prints it, one line per target, each
// ending in a newline.
func (t Table) String() string {
	var b strings.Builder
	for _, l := range t {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Size is the total length the table maps.
func (t Table) Size() Sectors {
	var n Sectors
	for _, l := range t {
		n += l.Length
	}
	return n
}

// Validate checks that the table is non-empty, that its lines are
// contiguous from sector 0 with non-zero lengths, and each target's own rules.
func (t Table) Validate() error {
	if len(t) == 0 {
		return fmt.Errorf("dm: %w: table has no lines", ErrInvalidTable)
	}
	var next Sectors
	for i, l := range t {
		if l.Target == nil {
			return fmt.Errorf("dm: %w: line %d has no target", ErrInvalidTable, i)
		}
		if l.Start != next {
			return fmt.Errorf("dm: %w: line %d starts at sector %d, expected %d (lines must be contiguous from 0)",
				ErrInvalidTable, i, l.Start, next)
		}
		if l.Length == 0 {
			return fmt.Errorf("dm: %w: line %d has zero length", ErrInvalidTable, i)
		}
		typ := l.Target.Type()
		if typ == "" || len(typ) >= maxTypeName || strings.ContainsAny(typ, " \t\n") {
			return fmt.Errorf("dm: %w: line %d: bad target type %q", ErrInvalidTable, i, typ)
		}
		if strings.ContainsAny(l.Target.Args(), "\n\x00") {
			return fmt.Errorf("dm: %w: line %d: arguments contain a newline or NUL", ErrInvalidTable, i)
		}
		if err := l.Target.Validate(l.Length); err != nil {
			return fmt.Errorf("dm: %w: line %d (%s): %w", ErrInvalidTable, i, typ, err)
		}
		next += l.Length
	}
	return nil
}

// RawLine is one target line as the kernel reports it, for Table (Params
// are the constructor arguments, devices as MAJ:MIN) or Status (Params are
// the target's status).
type RawLine struct {
	Start  Sectors
	Length Sectors
	Type   string
	Params string
}

// String renders "start length type params" as dmsetup table/status print it.
func (r RawLine) String() string {
	if r.Params == "" {
		return fmt.Sprintf("%d %d %s", r.Start, r.Length, r.Type)
	}
	return fmt.Sprintf("%d %d %s %s", r.Start, r.Length, r.Type, r.Params)
}

// ParseRawLine parses one "start length type params" line as dmsetup
// prints it (without the "name: " prefix of multi-device output).
func ParseRawLine(s string) (RawLine, error) {
	f := strings.SplitN(strings.TrimSpace(s), " ", 4)
	if len(f) < 3 {
		return RawLine{}, fmt.Errorf("dm: parse table line %q: want start length type [params]", s)
	}
	start, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return RawLine{}, fmt.Errorf("dm: parse table line %q: start: %w", s, err)
	}
	length, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return RawLine{}, fmt.Errorf("dm: parse table line %q: length: %w", s, err)
	}
	r := RawLine{Start: Sectors(start), Length: Sectors(length), Type: f[2]}
	if len(f) == 4 {
		r.Params = f[3]
	}
	return r, nil
}

// checkDevice validates a device argument: a /dev path or MAJ:MIN, with no
// whitespace.
func checkDevice(role, dev string) error {
	if dev == "" {
		return fmt.Errorf("%s device is empty", role)
	}
	if strings.ContainsAny(dev, " \t\n\x00") {
		return fmt.Errorf("%s device %q contains whitespace", role, dev)
	}
	return nil
}
