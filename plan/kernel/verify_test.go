package kernel

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lunferry/lunferry/clone"
)

func TestHydratedExtents(t *testing.T) {
	ext := func(off, n uint64) clone.Extent { return clone.Extent{Offset: off, Length: n} }
	assert.Equal(t, []clone.Extent{ext(0, 100)}, hydrated(nil, 100))
	assert.Equal(t, []clone.Extent{}, hydrated([]clone.Extent{ext(0, 100)}, 100), "nothing hydrated: compare nothing, not everything")
	assert.Equal(t, []clone.Extent{ext(0, 10), ext(30, 20), ext(60, 40)},
		hydrated([]clone.Extent{ext(10, 20), ext(50, 10)}, 100))
	assert.Equal(t, []clone.Extent{ext(10, 80)},
		hydrated([]clone.Extent{ext(0, 10), ext(90, 64)}, 100), "a last region past the volume's end")
}

func TestSkippedExtentsAreNotCompared(t *testing.T) {
	ext := func(off, n uint64) clone.Extent { return clone.Extent{Offset: off, Length: n} }
	unhydrated := []clone.Extent{ext(10, 20), ext(50, 10)}
	skip := []clone.Extent{ext(0, 5), ext(25, 10), ext(80, 64)}
	assert.Equal(t, []clone.Extent{ext(5, 5), ext(35, 15), ext(60, 20)}, hydrated(merge(unhydrated, skip), 100))
	assert.Equal(t, hydrated(unhydrated, 100), hydrated(merge(unhydrated, nil), 100))
}

// TestHostViewOnlyWhereHydrated: the host's blocks are compared with the
// new LUN only where the clone has hydrated them (elsewhere the host's
// view is the old LUN's data, not the new LUN's).
func TestHostViewOnlyWhereHydrated(t *testing.T) {
	ext := func(off, n uint64) clone.Extent { return clone.Extent{Offset: off, Length: n} }
	unhydrated := []clone.Extent{ext(10, 20), ext(50, 10)}
	assert.Equal(t, []clone.Extent{ext(0, 10), ext(30, 5), ext(40, 10), ext(60, 5)},
		intersect([]clone.Extent{ext(0, 35), ext(40, 25)}, unhydrated))
	assert.Empty(t, intersect([]clone.Extent{ext(12, 8)}, unhydrated), "wholly unhydrated")
	assert.Equal(t, []clone.Extent{ext(70, 30)}, intersect([]clone.Extent{ext(70, 30)}, unhydrated))
	assert.Empty(t, intersect(nil, unhydrated))
}
