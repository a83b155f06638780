package dm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseIOCounters(t *testing.T) {
	// A 6.1 dm device's stat: 17 fields (reads, writes, in flight,
	// io_ticks, time in queue, discards, flushes).
	n, err := ParseIOCounters("    1520        0    97664      812     3301        0   180224    23456        0     9120    24268        0        0        0        0       42       31\n")
	require.NoError(t, err)
	assert.Equal(t, IOCounters{Requests: 1520 + 3301, Busy: (812 + 23456) * time.Millisecond}, n)

	_, err = ParseIOCounters("1 2 3")
	assert.ErrorContains(t, err, "3 fields")
	_, err = ParseIOCounters("1 2 3 x 5 6 7 8")
	assert.ErrorContains(t, err, `field 4 "x"`)
}
