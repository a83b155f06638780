package bench

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// PlotSeries draws series sharing a unit as lines over time into a PNG at
// path.
func PlotSeries(path, title, unit string, series ...Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = unit
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	var lines []any
	for _, s := range series {
		xy := make(plotter.XYs, len(s.Points))
		for i, pt := range s.Points {
			xy[i].X, xy[i].Y = pt.T, pt.V
		}
		lines = append(lines, s.Title, xy)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return fmt.Errorf("bench: plot %s: %w", path, err)
	}
	if err := p.Save(20*vg.Centimeter, 10*vg.Centimeter, path); err != nil {
		return fmt.Errorf("bench: plot %s: %w", path, err)
	}
	return nil
}
