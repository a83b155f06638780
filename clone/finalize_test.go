package clone

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSwapper is a device that is a clone until swapped.
type fakeSwapper struct {
	name     string
	progress Progress
	length   uint64
	linear   string // device of the linear table, "" while a clone
	swapErr  error
	swaps    int
	// swapTo overrides what the swap leaves in place (to test the check).
	swapTo string
}

func (f *fakeSwapper) Name() string { return f.name }

func (f *fakeSwapper) Progress(context.Context) (Progress, error) {
	if f.linear != "" {
		return Progress{}, fmt.Errorf("clone: %s: %w", f.name, ErrNotClone)
	}
	return f.progress, nil
}

func (f *fakeSwapper) Length(context.Context) (uint64, error) { return f.length, nil }

func (f *fakeSwapper) LinearOver(_ context.Context, dev string) (bool, error) {
	return f.linear != "" && f.linear == dev, nil
}

func (f *fakeSwapper) SwapToLinear(_ context.Context, dev string, length uint64) (time.Duration, error) {
	f.swaps++
	if f.swapErr != nil {
		return 0, f.swapErr
	}
	if length != f.length {
		return 0, fmt.Errorf("length %d, want %d", length, f.length)
	}
	f.linear = dev
	if f.swapTo != "" {
		f.linear = f.swapTo
	}
	return 42 * time.Millisecond, nil
}

func TestFinalizeRefusesBeforeHydrationCompletes(t *testing.T) {
	s := &fakeSwapper{name: "lunferry-vol1", length: 131072, progress: Progress{HydratedRegions: 511, TotalRegions: 1024, RegionSize: 128}}
	_, err := Finalize(context.Background(), s, "/dev/sdc")
	require.ErrorIs(t, err, ErrNotHydrated)
	var nh *NotHydratedError
	require.True(t, errors.As(err, &nh))
	assert.Equal(t, uint64(511), nh.Hydrated)
	assert.Equal(t, uint64(1024), nh.Total)
	assert.Contains(t, err.Error(), "511 of 1024 regions hydrated (49.9%)")
	assert.Zero(t, s.swaps, "nothing swapped")
}

func TestFinalizeSwapsAndIsIdempotent(t *testing.T) {
	s := &fakeSwapper{name: "lunferry-vol1", length: 131072, progress: Progress{HydratedRegions: 1024, TotalRegions: 1024, RegionSize: 128}}
	res, err := Finalize(context.Background(), s, "/dev/sdc")
	require.NoError(t, err)
	assert.Equal(t, FinalizeResult{Suspended: 42 * time.Millisecond, Length: 131072}, res)
	assert.Equal(t, "/dev/sdc", s.linear)

	res, err = Finalize(context.Background(), s, "/dev/sdc")
	require.NoError(t, err)
	assert.True(t, res.AlreadyDone)
	assert.Equal(t, 1, s.swaps, "the second call changes nothing")
}

func TestFinalizeRefusesAForeignTable(t *testing.T) {
	s := &fakeSwapper{name: "lunferry-vol1", length: 8, linear: "/dev/sdz"}
	_, err := Finalize(context.Background(), s, "/dev/sdc")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "neither a clone nor linear over /dev/sdc")
	assert.Zero(t, s.swaps)
}

func TestFinalizeReportsSwapFailure(t *testing.T) {
	s := &fakeSwapper{name: "lunferry-vol1", length: 8, progress: Progress{HydratedRegions: 1, TotalRegions: 1, RegionSize: 8},
		swapErr: errors.New("dm: replace lunferry-vol1: suspend failed; the device still serves its old table")}
	_, err := Finalize(context.Background(), s, "/dev/sdc")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "still serves its old table")

	s = &fakeSwapper{name: "lunferry-vol1", length: 8, progress: Progress{HydratedRegions: 1, TotalRegions: 1, RegionSize: 8}, swapTo: "/dev/sdq"}
	_, err = Finalize(context.Background(), s, "/dev/sdc")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "do not detach the old LUN")
}
