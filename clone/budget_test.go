package clone

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBudgetMaxMinFair(t *testing.T) {
	b := NewBudget(30 * MiB)
	x, y, z := b.Join("x"), b.Join("y"), b.Join("z")
	x.Set(true, Unlimited)
	y.Set(true, 5*MiB)
	z.Set(true, Unlimited)
	assert.Equal(t, 5*MiB, y.Allowance(), "wants less than a fair share: gets what it wants")
	assert.Equal(t, Rate(25*MiB/2), x.Allowance())
	assert.Equal(t, Rate(25*MiB/2), z.Allowance())

	// A paused volume's part goes to the others.
	z.Set(false, Unlimited)
	assert.Equal(t, 25*MiB, x.Allowance())
	assert.Equal(t, 5*MiB, y.Allowance())
	assert.Equal(t, 10*MiB, z.Allowance(), "an inactive share is told what it would get")

	// A finished volume leaves.
	y.Leave()
	assert.Equal(t, 30*MiB, x.Allowance())
	assert.Equal(t, map[string]Rate{"x": 30 * MiB, "z": 15 * MiB}, b.Allocations())

	b.SetTotal(8 * MiB)
	assert.Equal(t, 8*MiB, x.Allowance())
	assert.Equal(t, 8*MiB, b.Total())

	b.SetTotal(Unlimited)
	assert.Equal(t, Unlimited, x.Allowance())
	x.Set(true, 3*MiB)
	assert.Equal(t, 3*MiB, x.Allowance())
}

func TestBudgetNeverHandsOutUnlimitedByRoundingToZero(t *testing.T) {
	b := NewBudget(2)
	s := []*Share{b.Join("a"), b.Join("b"), b.Join("c")}
	for _, x := range s {
		x.Set(true, Unlimited)
	}
	for _, x := range s {
		assert.NotEqual(t, Unlimited, x.Allowance())
	}
}

func TestControllersShareBudgetWithASlowDevice(t *testing.T) {
	// Volume a sits on a slow array (4 MB/s): the part of the budget it
	// cannot use goes to b.
	clk := newFakeClock(monday0759)
	budget := NewBudget(20 * MiB)
	devA := newSimDevice(clk, 128, bigVolume, constBW(4e6))
	devB := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	ca := NewController(devA, Options{Clock: clk, Share: budget.Join("a")})
	cb := NewController(devB, Options{Clock: clk, Share: budget.Join("b")})
	ctx := context.Background()
	var ptsA, ptsB []point
	nextA, nextB := clk.Now(), clk.Now()
	end := clk.Now().Add(300 * time.Second)
	for clk.Now().Before(end) {
		now := clk.Now()
		if !now.Before(nextA) {
			d, err := ca.Step(ctx)
			assert.NoError(t, err)
			nextA = now.Add(d)
		}
		if !now.Before(nextB) {
			d, err := cb.Step(ctx)
			assert.NoError(t, err)
			nextB = now.Add(d)
		}
		ptsA = append(ptsA, point{now, devA.bytesAt()})
		ptsB = append(ptsB, point{now, devB.bytesAt()})
		clk.Advance(10 * time.Millisecond)
	}
	ra := avgRate(ptsA, 60*time.Second, 300*time.Second)
	rb := avgRate(ptsB, 60*time.Second, 300*time.Second)
	assert.InDelta(t, 4e6, ra, 0.1*4e6, "a runs at its device's speed")
	assert.Greater(t, rb, float64(20*MiB)-4e6*1.3, "b gets what a cannot use: %.1f MiB/s", rb/float64(MiB))
	assert.LessOrEqual(t, ra+rb, 1.1*float64(20*MiB), "together within the budget")
}
