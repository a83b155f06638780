package clone

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a throttle that depends on the time of the week: office hours
// slower, nights and weekends faster. The first Window that contains a given
// instant decides the rate; outside every window Default applies. The zero
// Schedule is no throttle at all, so a spec without one is unlimited.
type Schedule struct {
	// Default is the rate outside every window; nil means Unlimited.
	// ParseSchedule and Fixed store an Unlimited default as nil, so each
	// schedule has one form and state files round-trip to equal values.
	Default *Rate
	// Windows are tried in order; the first that contains the instant wins.
	Windows []Window
	// Location is the time zone the windows are written in; nil means the
	// proxy's local time zone (time.Local).
	Location *time.Location
	// Adaptive, when above 1, makes hydration yield to the host (see
	// Yield): the schedule's rate is then a ceiling, and hydration backs
	// off whenever the host's I/O latency rises above Adaptive times its
	// idle baseline.
	Adaptive float64
}

// Window is a daily time range on some weekdays with its own rate.
type Window struct {
	// Days the window starts on; empty means every day.
	Days []time.Weekday
	// Start and End are times of day (offsets from midnight, minute
	// precision). End may be 24h. End <= Start means the window crosses
	// midnight: it starts on one of Days and ends on the next day.
	// Start == End == 0 means the whole day.
	Start, End time.Duration
	// Rate applies inside the window (Paused: hydration held,
	// Unlimited: no throttle).
	Rate Rate
}

// ErrBadSchedule is wrapped by every ParseSchedule error.
var ErrBadSchedule = errors.New("invalid throttle schedule")

// scheduleHelp is appended to parse errors so the admin knows what to write.
const scheduleHelp = `write clauses separated by ";", each "[days] [HH:MM-HH:MM]=RATE", plus "*=RATE" for all other times and optionally "tz=Area/City", e.g. "mon-fri 08:00-18:00=50MiB/s; sat,sun=unlimited; 22:00-06:00=400MiB/s; *=100MiB/s"`

// Fixed returns a Schedule with one rate at all times.
func Fixed(r Rate) Schedule {
	var s Schedule
	s.setDefault(r)
	return s
}

// setDefault sets the rate outside every window (nil for Unlimited).
func (s *Schedule) setDefault(r Rate) {
	s.Default = nil
	if r != Unlimited {
		s.Default = &r
	}
}

// ParseSchedule parses a throttle schedule such as
//
//	mon-fri 08:00-18:00=50MiB/s; 22:00-06:00=unlimited; *=200MiB/s; tz=Europe/Berlin
//
// Grammar: clauses separated by ";" (or newlines). A clause is
//
//	[DAYS] [HH:MM-HH:MM] = RATE   a window (days alone = the whole day,
//	                              times alone = every day)
//	* = RATE                      the default outside every window
//	tz = Area/City                the time zone of the windows (default: local)
//	adaptive[=F]                  yield to the host: the rates become ceilings
//	                              and hydration backs off while the host's I/O
//	                              latency is above F (default 1.5) times its
//	                              idle baseline (see Yield)
//	RATE                          shorthand for "*=RATE" (a fixed throttle)
//
// DAYS is a comma list of mon,tue,wed,thu,fri,sat,sun (or full names) and
// ranges such as mon-fri or fri-mon. A window whose end is not after its
// start (22:00-06:00) crosses midnight and belongs to the day it starts on.
// "24:00" is allowed as an end. RATE is anything ParseRate accepts: "0"
// holds hydration, "unlimited" lifts the throttle. Windows are tried in the
// order written; the first match wins. Without "*=RATE" the default is
// unlimited; an empty string is a Fixed(Unlimited) schedule.
func ParseSchedule(s string) (Schedule, error) {
	var sch Schedule
	seenDefault := false
	clauses := strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' })
	for i, raw := range clauses {
		c := strings.TrimSpace(raw)
		if c == "" {
			continue
		}
		fail := func(format string, a ...any) error {
			return fmt.Errorf("clone: schedule clause %d %q: %s: %s: %w", i+1, c, fmt.Sprintf(format, a...), scheduleHelp, ErrBadSchedule)
		}
		lhs, rhs, hasEq := strings.Cut(c, "=")
		lhs, rhs = strings.TrimSpace(lhs), strings.TrimSpace(rhs)
		if !hasEq && !strings.EqualFold(lhs, "adaptive") {
			lhs, rhs = "*", c // a bare RATE is the default
		}
		if strings.EqualFold(lhs, "adaptive") {
			f, err := parseYieldFactor(rhs, hasEq)
			if err != nil {
				return Schedule{}, fail("%v", err)
			}
			sch.Adaptive = f
			continue
		}
		switch strings.ToLower(lhs) {
		case "*", "default":
			r, err := ParseRate(rhs)
			switch {
			case err != nil && !hasEq:
				return Schedule{}, fail("neither a window (missing \"=RATE\") nor a rate")
			case err != nil:
				return Schedule{}, fail("bad rate %q", rhs)
			case seenDefault:
				return Schedule{}, fail("the default rate is given twice")
			}
			sch.setDefault(r)
			seenDefault = true
			continue
		case "tz":
			loc, err := time.LoadLocation(rhs)
			if err != nil {
				return Schedule{}, fail("unknown time zone %q (use an IANA name such as Europe/Berlin or UTC; is tzdata installed?)", rhs)
			}
			sch.Location = loc
			continue
		case "":
			return Schedule{}, fail("nothing before \"=\"")
		}
		w, err := parseWindow(lhs, rhs)
		if err != nil {
			return Schedule{}, fail("%v", err)
		}
		sch.Windows = append(sch.Windows, w)
	}
	return sch, nil
}

// parseYieldFactor parses the factor of an "adaptive[=F]" clause.
func parseYieldFactor(s string, given bool) (float64, error) {
	if !given {
		return DefaultYieldFactor, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 1 || f > 100 {
		return 0, fmt.Errorf("adaptive wants a latency factor above 1 (the host's latency over its idle baseline that makes hydration back off), e.g. adaptive=1.5, not %q", s)
	}
	return f, nil
}

// parseWindow parses the window clause "lhs=rhs": [DAYS] [HH:MM-HH:MM]=RATE.
func parseWindow(lhs, rhs string) (Window, error) {
	r, err := ParseRate(rhs)
	if err != nil {
		return Window{}, fmt.Errorf("bad rate %q", rhs)
	}
	w := Window{Rate: r}
	for _, f := range strings.Fields(lhs) {
		if f[0] >= '0' && f[0] <= '9' {
			if w.Start != 0 || w.End != 0 {
				return Window{}, errors.New("more than one time range")
			}
			if w.Start, w.End, err = parseTimeRange(f); err != nil {
				return Window{}, err
			}
			continue
		}
		if w.Days != nil {
			return Window{}, errors.New("more than one day list (write days as one comma list, e.g. mon-fri,sun)")
		}
		if w.Days, err = parseDays(f); err != nil {
			return Window{}, err
		}
	}
	return w, nil
}

// dayNames maps accepted spellings to weekdays.
var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// parseDays parses "mon-fri", "sat,sun", "fri-mon", "mon,wed-fri".
func parseDays(s string) ([]time.Weekday, error) {
	var set [7]bool
	for _, part := range strings.Split(strings.ToLower(s), ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, ok := dayNames[a]
		if !ok {
			return nil, fmt.Errorf("unknown day %q (use mon,tue,wed,thu,fri,sat,sun or a range like mon-fri)", a)
		}
		to := from
		if isRange {
			if to, ok = dayNames[b]; !ok {
				return nil, fmt.Errorf("unknown day %q (use mon,tue,wed,thu,fri,sat,sun or a range like mon-fri)", b)
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			set[d] = true
			if d == to {
				break
			}
		}
	}
	var days []time.Weekday
	for d, on := range set {
		if on {
			days = append(days, time.Weekday(d))
		}
	}
	return days, nil
}

// parseTimeRange parses "HH:MM-HH:MM".
func parseTimeRange(s string) (start, end time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("time range %q needs a start and an end, e.g. 08:00-18:00", s)
	}
	if start, err = parseTimeOfDay(a, false); err != nil {
		return 0, 0, err
	}
	if end, err = parseTimeOfDay(b, true); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, fmt.Errorf("time range %q is empty (for the whole day leave the times out)", s)
	}
	return start, end, nil
}

// parseTimeOfDay parses "HH:MM" (or "HH"); "24:00" only as an end.
func parseTimeOfDay(s string, isEnd bool) (time.Duration, error) {
	h, m, hasMin := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm := 0
	var err2 error
	if hasMin {
		mm, err2 = strconv.Atoi(m)
	}
	if err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && (mm != 0 || !isEnd)) {
		return 0, fmt.Errorf("bad time of day %q (use HH:MM from 00:00 to 23:59, or 24:00 as an end)", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// RateAt returns the rate that applies at t.
func (s Schedule) RateAt(t time.Time) Rate {
	if w, ok := s.WindowAt(t); ok {
		return w.Rate
	}
	return s.outside()
}

// outside is the rate outside every window.
func (s Schedule) outside() Rate {
	if s.Default == nil {
		return Unlimited
	}
	return *s.Default
}

// WindowAt returns the first window containing t, if any.
func (s Schedule) WindowAt(t time.Time) (Window, bool) {
	loc := s.Location
	if loc == nil {
		loc = time.Local
	}
	lt := t.In(loc)
	tod := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second
	today := lt.Weekday()
	yesterday := (today + 6) % 7
	for _, w := range s.Windows {
		if w.contains(today, yesterday, tod) {
			return w, true
		}
	}
	return Window{}, false
}

// contains reports whether the window holds time of day tod on weekday
// today (yesterday is the day before, for windows crossing midnight).
func (w Window) contains(today, yesterday time.Weekday, tod time.Duration) bool {
	if w.Start == 0 && w.End == 0 {
		return w.onDay(today)
	}
	if w.Start < w.End {
		return w.onDay(today) && tod >= w.Start && tod < w.End
	}
	// Crosses midnight: the evening part on a listed day, the morning part
	// on the day after a listed day.
	return (w.onDay(today) && tod >= w.Start) || (w.onDay(yesterday) && tod < w.End)
}

// onDay reports whether the window starts on d.
func (w Window) onDay(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}

// String renders the schedule in the syntax ParseSchedule reads.
func (s Schedule) String() string {
	var parts []string
	for _, w := range s.Windows {
		parts = append(parts, w.String())
	}
	if len(parts) == 0 && s.Location == nil && s.Adaptive == 0 {
		return s.outside().String()
	}
	parts = append(parts, "*="+s.outside().String())
	if s.Location != nil && s.Location != time.Local {
		parts = append(parts, "tz="+s.Location.String())
	}
	if s.Adaptive > 0 {
		parts = append(parts, "adaptive="+strconv.FormatFloat(s.Adaptive, 'g', -1, 64))
	}
	return strings.Join(parts, "; ")
}

// String renders the window as "mon-fri 08:00-18:00=50MiB/s".
func (w Window) String() string {
	var b strings.Builder
	if len(w.Days) > 0 && len(w.Days) < 7 {
		b.WriteString(daysString(w.Days))
	}
	if w.Start != 0 || w.End != 0 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s-%s", todString(w.Start), todString(w.End))
	}
	if b.Len() == 0 {
		b.WriteString("mon-sun")
	}
	b.WriteString("=" + w.Rate.String())
	return b.String()
}

// MarshalText renders the schedule like String, for JSON and state files.
func (s Schedule) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses text with ParseSchedule.
func (s *Schedule) UnmarshalText(text []byte) error {
	v, err := ParseSchedule(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// todString renders a time of day as HH:MM.
func todString(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// daysString renders weekdays compactly, folding runs into ranges.
func daysString(days []time.Weekday) string {
	short := [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	var set [7]bool
	for _, d := range days {
		set[d%7] = true
	}
	// Start the runs on Monday so mon-fri and sat,sun read naturally.
	order := []time.Weekday{1, 2, 3, 4, 5, 6, 0}
	var out []string
	for i := 0; i < len(order); {
		if !set[order[i]] {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && set[order[j+1]] {
			j++
		}
		switch {
		case j == i:
			out = append(out, short[order[i]])
		case j == i+1:
			out = append(out, short[order[i]], short[order[j]])
		default:
			out = append(out, short[order[i]]+"-"+short[order[j]])
		}
		i = j + 1
	}
	return strings.Join(out, ",")
}
