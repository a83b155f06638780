package clone

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Rate is a hydration rate in bytes per second. The zero value, Paused,
// holds hydration; Unlimited, the largest value, means no throttle. Both
// order naturally: the stricter of two rates is the smaller.
type Rate uint64

// The two rates that are not a number of bytes per second.
const (
	// Paused holds hydration: the controller keeps it disabled. Written
	// and rendered "0".
	Paused Rate = 0
	// Unlimited means no throttle: the controller lets dm-clone copy as
	// fast as its tuned settings allow. Written and rendered "unlimited".
	Unlimited Rate = math.MaxUint64
)

// Binary and decimal byte units accepted by ParseRate.
const (
	KiB Rate = 1 << 10
	MiB Rate = 1 << 20
	GiB Rate = 1 << 30
	TiB Rate = 1 << 40
	KB  Rate = 1000
	MB  Rate = 1000 * KB
	GB  Rate = 1000 * MB
	TB  Rate = 1000 * GB
)

// ErrBadRate is wrapped by every ParseRate error.
var ErrBadRate = errors.New("invalid rate")

// rateHelp is appended to parse errors so the admin knows what to write.
const rateHelp = `write a number of bytes per second with an optional unit, e.g. "50MiB/s", "200MB/s", "1G", "750K", or 0 for paused or unlimited for no throttle`

// ParseRate parses a rate such as "50MiB/s", "1G", "200MB/s", "4096", "0" or
// "unlimited".
//
// Units (case-insensitive, optional trailing "/s"): "KiB", "MiB", "GiB",
// "TiB" are powers of 1024; "kB", "MB", "GB", "TB" are powers of 1000; a
// single letter "K", "M", "G", "T" is a power of 1024 as in dd, fio and
// dmsetup; "B" or no unit means bytes. Fractions are allowed ("1.5G").
// "0" (in any unit) and "paused" mean Paused; "unlimited" and "max" mean
// Unlimited. "none" and "off" are refused: they read as either.
func ParseRate(s string) (Rate, error) {
	in := strings.TrimSpace(s)
	t := strings.ToLower(in)
	t = strings.TrimSuffix(t, "/s")
	t = strings.TrimSpace(t)
	switch t {
	case "":
		return 0, fmt.Errorf("clone: rate is empty: %s: %w", rateHelp, ErrBadRate)
	case "paused":
		return Paused, nil
	case "unlimited", "max":
		return Unlimited, nil
	case "none", "off":
		return 0, fmt.Errorf("clone: rate %q is ambiguous: write 0 for paused or unlimited for no throttle: %w", in, ErrBadRate)
	}
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return 0, fmt.Errorf("clone: rate %q has no number: %s: %w", in, rateHelp, ErrBadRate)
	}
	var mult Rate
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kib", "ki":
		mult = KiB
	case "m", "mib", "mi":
		mult = MiB
	case "g", "gib", "gi":
		mult = GiB
	case "t", "tib", "ti":
		mult = TiB
	case "kb":
		mult = KB
	case "mb":
		mult = MB
	case "gb":
		mult = GB
	case "tb":
		mult = TB
	default:
		return 0, fmt.Errorf("clone: rate %q has unknown unit %q: %s: %w", in, unit, rateHelp, ErrBadRate)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("clone: rate %q: bad number %q: %s: %w", in, num, rateHelp, ErrBadRate)
	}
	v := f * float64(mult)
	if v >= math.MaxUint64/2 {
		return 0, fmt.Errorf("clone: rate %q is too large: %s: %w", in, rateHelp, ErrBadRate)
	}
	r := Rate(math.Round(v))
	if r == Paused && f != 0 {
		return 0, fmt.Errorf("clone: rate %q rounds to zero bytes per second, which would mean paused: %s: %w", in, rateHelp, ErrBadRate)
	}
	return r, nil
}

// String renders r in the largest binary unit that keeps it readable, e.g.
// "50MiB/s", "1.5GiB/s", and Paused as "0", Unlimited as "unlimited".
// ParseRate(r.String()) returns r exactly when r is a whole number of that
// unit, and within 0.1% otherwise.
func (r Rate) String() string {
	switch r {
	case Paused:
		return "0"
	case Unlimited:
		return "unlimited"
	}
	units := []struct {
		v    Rate
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}}
	for _, u := range units {
		if r >= u.v {
			if r%u.v == 0 {
				return fmt.Sprintf("%d%s/s", r/u.v, u.name)
			}
			return strconv.FormatFloat(float64(r)/float64(u.v), 'f', 3, 64) + u.name + "/s"
		}
	}
	return fmt.Sprintf("%dB/s", uint64(r))
}

// MarshalText renders r like String, so JSON and state files stay readable.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses text with ParseRate. State files written while the
// zero Rate meant no throttle hold "unlimited" for it, never "0", so they
// keep their meaning.
func (r *Rate) UnmarshalText(text []byte) error {
	v, err := ParseRate(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
