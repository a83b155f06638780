package bench

import (
	"strings"
	"testing"
)

func TestWithGroups(t *testing.T) {
	p, err := FullParams().WithGroups("era, verify")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range GroupIDs {
		if want := id == "era" || id == "verify"; p.Runs(id) != want {
			t.Errorf("Runs(%s) = %v, want %v", id, !want, want)
		}
	}
	if !strings.Contains(p.String(), "only the figure groups era, verify") {
		t.Errorf("String() does not say the run is partial: %s", p)
	}
	all, err := FullParams().WithGroups("")
	if err != nil || !all.Runs("scale") || strings.Contains(all.String(), "only") {
		t.Errorf("empty -only: %v %s", err, all)
	}
	if _, err := FullParams().WithGroups("era,hydrate"); err == nil || !strings.Contains(err.Error(), `"hydrate"`) || !strings.Contains(err.Error(), "hydration") {
		t.Errorf("unknown group: %v, want an error naming it and the known groups", err)
	}
}
