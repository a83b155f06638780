package bench

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Goal is the range a figure's median should fall in; a nil bound is
// open. A goal with neither bound is "reported" only.
type Goal struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// AtLeast, AtMost, Between and Reported build goals.
func AtLeast(v float64) Goal      { return Goal{Min: &v} }
func AtMost(v float64) Goal       { return Goal{Max: &v} }
func Between(lo, hi float64) Goal { return Goal{Min: &lo, Max: &hi} }
func Reported() Goal              { return Goal{} }

// String renders the goal as the results table shows it.
func (g Goal) String() string {
	switch {
	case g.Min != nil && g.Max != nil:
		return fmt.Sprintf("%g–%g", *g.Min, *g.Max)
	case g.Min != nil:
		return fmt.Sprintf("≥ %g", *g.Min)
	case g.Max != nil:
		return fmt.Sprintf("≤ %g", *g.Max)
	}
	return "reported"
}

// Met says whether v is within the goal; ok is false for a reported-only
// goal.
func (g Goal) Met(v float64) (met, ok bool) {
	if g.Min == nil && g.Max == nil {
		return false, false
	}
	return (g.Min == nil || v >= *g.Min) && (g.Max == nil || v <= *g.Max), true
}

// Figure is one line of the results table: samples of a ratio (or of a
// value in Unit) measured over the repetitions of one run.
type Figure struct {
	// ID is short and stable ("hydration", "hostio-export-twohop-randread").
	ID string `json:"id"`
	// Name says what is divided by what.
	Name string `json:"name"`
	// How says how it was measured.
	How string `json:"how"`
	// Unit is "ratio" or the unit of a value (ms, MiB, ...).
	Unit string `json:"unit"`
	Goal Goal   `json:"goal"`
	// Samples are the per-repetition values; Summary summarizes them.
	Samples []float64 `json:"samples"`
	Summary Summary   `json:"summary"`
	// A and B are the raw measurements a ratio came from, when it is one.
	A []float64 `json:"a,omitempty"`
	B []float64 `json:"b,omitempty"`
	// Note qualifies the figure (samples left out, what limits it).
	Note string `json:"note,omitempty"`
}

// NewFigure summarizes samples into a figure.
func NewFigure(id, name, how, unit string, goal Goal, samples []float64) Figure {
	return Figure{ID: id, Name: name, How: how, Unit: unit, Goal: goal, Samples: samples, Summary: Summarize(samples)}
}

// RatioFigure is a figure of a[i]/b[i].
func RatioFigure(id, name, how string, goal Goal, a, b []float64) Figure {
	f := NewFigure(id, name, how, "ratio", goal, Ratios(a, b))
	f.A, f.B = a, b
	return f
}

// Point is one sample of a time series: seconds since its start, value.
type Point struct {
	T float64 `json:"t"`
	V float64 `json:"v"`
}

// Series is a time series measured during the run, for the plots.
type Series struct {
	ID     string  `json:"id"`
	Title  string  `json:"title"`
	Unit   string  `json:"unit"`
	Points []Point `json:"points"`
}

// Machine says where the bench ran.
type Machine struct {
	Host    string   `json:"host"`
	CPUs    int      `json:"cpus"`
	Model   string   `json:"model"`
	MemMiB  int      `json:"memMiB"`
	LoadAvg []string `json:"loadAvg"`
	Kernel  string   `json:"labKernel"`
	VM      string   `json:"vm"`
}

// Results is what one run of the bench produced.
type Results struct {
	Mode     string    `json:"mode"`
	Started  time.Time `json:"started"`
	Took     Duration  `json:"took"`
	Machine  Machine   `json:"machine"`
	Params   Params    `json:"params"`
	Figures  []Figure  `json:"figures"`
	Series   []Series  `json:"series,omitempty"`
	LeftOut  []string  `json:"leftOut"`
	Failures []string  `json:"failures,omitempty"`
}

// Duration is a time.Duration that marshals as its string.
type Duration time.Duration

// MarshalJSON renders d as "1m2.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON parses what MarshalJSON wrote.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// LeftOut lists the figure groups a run with Params.Groups left out.
func LeftOut(p Params) []string {
	var out []string
	for _, id := range GroupIDs {
		if !p.Runs(id) {
			out = append(out, "figure group "+id+": not asked for (-only)")
		}
	}
	return out
}

// Markdown renders the results table and its context.
func (r *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# lunferry lab bench (%s mode)\n\n", r.Mode)
	m := r.Machine
	fmt.Fprintf(&b, "Run %s, took %s, on %s: %d CPUs (%s), %d MiB; load average at start and end %s; lab VM: %s, kernel %s.\n",
		r.Started.UTC().Format("2006-01-02 15:04 UTC"), time.Duration(r.Took).Round(time.Second), m.Host, m.CPUs, m.Model, m.MemMiB,
		strings.Join(m.LoadAvg, " / "), m.VM, m.Kernel)
	b.WriteString("Absolute figures are emulated (qemu TCG on a shared machine) and meaningless; each ratio divides two measurements of the same run, interleaved A B A B.\n\n")
	b.WriteString("| figure | how | goal | median [min–max] | n | met? |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		unit := ""
		if f.Unit != "ratio" {
			unit = " " + f.Unit
		}
		met := "reported"
		if ok, has := f.Goal.Met(f.Summary.Median); has && f.Summary.N > 0 {
			met = map[bool]string{true: "yes", false: "**no**"}[ok]
		}
		if f.Summary.N == 0 {
			met = "not measured"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.3g%s [%.3g–%.3g] | %d | %s |\n", f.Name, f.How, f.Goal, f.Summary.Median, unit,
			f.Summary.Min, f.Summary.Max, f.Summary.N, met)
	}
	notes := false
	for _, f := range r.Figures {
		if f.Note != "" {
			if !notes {
				b.WriteString("\nNotes:\n\n")
				notes = true
			}
			fmt.Fprintf(&b, "- %s: %s\n", f.Name, f.Note)
		}
	}
	b.WriteString("\nParameters: " + r.Params.String() + "\n")
	if len(r.LeftOut) > 0 {
		b.WriteString("\nNot measured:\n\n")
	}
	for _, l := range r.LeftOut {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	if len(r.Failures) > 0 {
		b.WriteString("\nFailures (figures missing because of them):\n\n")
		for _, l := range r.Failures {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	return b.String()
}
