package clone

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBudgetMaxMinFair(t *testing.T) {
	b := NewBudget(30 * MiB)
	x, y, z := b.join(), b.join(), b.join()
	x.set(true, Unlimited)
	y.set(true, 5*MiB)
	z.set(true, Unlimited)
	assert.Equal(t, 5*MiB, y.allowance(), "wants less than a fair share: gets what it wants")
	assert.Equal(t, Rate(25*MiB/2), x.allowance())
	assert.Equal(t, Rate(25*MiB/2), z.allowance())

	// A paused volume's part goes to the others.
	z.set(false, Unlimited)
	assert.Equal(t, 25*MiB, x.allowance())
	assert.Equal(t, 5*MiB, y.allowance())
	assert.Equal(t, 10*MiB, z.allowance(), "an inactive share is told what it would get")

	// A finished volume leaves.
	y.leave()
	assert.Equal(t, 30*MiB, x.allowance())
	assert.Equal(t, 15*MiB, z.allowance())

	// No total: each volume gets its own cap.
	u := NewBudget(Unlimited).join()
	assert.Equal(t, Unlimited, u.allowance())
	u.set(true, 3*MiB)
	assert.Equal(t, 3*MiB, u.allowance())
}

func TestBudgetNeverHandsOutUnlimitedByRoundingToZero(t *testing.T) {
	b := NewBudget(2)
	s := []*share{b.join(), b.join(), b.join()}
	for _, x := range s {
		x.set(true, Unlimited)
	}
	for _, x := range s {
		assert.NotEqual(t, Unlimited, x.allowance())
	}
}

func TestRegulatorSharesBudgetWithASlowDevice(t *testing.T) {
	// Volume a sits on a slow array (4 MB/s): the part of the budget it
	// cannot use goes to b.
	clk := newFakeClock(monday0759)
	r := NewRegulator(RegulatorOptions{Budget: NewBudget(20 * MiB)})
	devA := newSimDevice(clk, 128, bigVolume, constBW(4e6))
	devB := newSimDevice(clk, 128, bigVolume, constBW(60e6))
	var ptsA, ptsB []point
	step := func(name string, dev *simDevice) {
		if w, ok := r.Wake(name); !ok || !clk.Now().Before(w) {
			dev.send(t, r.Regulate(name, dev.status(), clk.Now(), Unlimited))
		}
	}
	end := clk.Now().Add(300 * time.Second)
	for clk.Now().Before(end) {
		step("a", devA)
		step("b", devB)
		ptsA = append(ptsA, point{clk.Now(), devA.bytesAt()})
		ptsB = append(ptsB, point{clk.Now(), devB.bytesAt()})
		clk.Advance(10 * time.Millisecond)
	}
	ra := avgRate(ptsA, 60*time.Second, 300*time.Second)
	rb := avgRate(ptsB, 60*time.Second, 300*time.Second)
	assert.InDelta(t, 4e6, ra, 0.1*4e6, "a runs at its device's speed")
	assert.Greater(t, rb, float64(20*MiB)-4e6*1.3, "b gets what a cannot use: %.1f MiB/s", rb/float64(MiB))
	assert.LessOrEqual(t, ra+rb, 1.1*float64(20*MiB), "together within the budget")
}

func TestBudgetPausedVolumeGetsNoShare(t *testing.T) {
	b := NewBudget(30 * MiB)
	x, y := b.join(), b.join()
	x.set(true, Paused)
	y.set(true, Unlimited)
	assert.Equal(t, Paused, x.allowance())
	assert.Equal(t, 30*MiB, y.allowance(), "the paused volume's part goes to the other")

	// Resumed: an equal split again.
	x.set(true, Unlimited)
	assert.Equal(t, 15*MiB, x.allowance())
	assert.Equal(t, 15*MiB, y.allowance())
}
