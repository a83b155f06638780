package clone

import (
	"sort"
	"sync"
)

// Budget splits one total hydration rate among the volumes migrating on a
// proxy at the same time. Each volume's Controller holds a Share and
// reports whether it is active (not paused, not done) and how much it wants
// (its own schedule's rate, or what its device can actually take). The
// total is divided max-min fair: volumes that want less than an equal share
// get what they want, the rest is split evenly among the others, and what
// paused or finished volumes would have used goes to the active ones.
// A Budget is safe for concurrent use.
type Budget struct {
	mu     sync.Mutex
	total  Rate
	shares []*Share
}

// Share is one volume's part of a Budget.
type Share struct {
	b      *Budget
	name   string
	active bool
	demand Rate // Unlimited = as much as it can get
	alloc  Rate
}

// NewBudget returns a budget of total bytes per second (Unlimited = no
// common cap; each volume then runs at its own schedule's rate).
func NewBudget(total Rate) *Budget { return &Budget{total: total} }

// Total returns the budget's total rate.
func (b *Budget) Total() Rate {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// SetTotal changes the total rate; allowances change at once.
func (b *Budget) SetTotal(total Rate) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
	b.rebalance()
}

// Join adds a volume (inactive until its first Set) and returns its share.
func (b *Budget) Join(name string) *Share {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &Share{b: b, name: name}
	b.shares = append(b.shares, s)
	b.rebalance()
	return s
}

// Allocations returns every member's current allowance by name, for status.
func (b *Budget) Allocations() map[string]Rate {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[string]Rate, len(b.shares))
	for _, s := range b.shares {
		m[s.name] = s.alloc
	}
	return m
}

// Name is the name the share joined with.
func (s *Share) Name() string { return s.name }

// Set reports whether the volume is hydrating and the rate it wants
// (Unlimited = as much as it can get), and rebalances the budget.
func (s *Share) Set(active bool, demand Rate) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.active == active && s.demand == demand {
		return
	}
	s.active, s.demand = active, demand
	s.b.rebalance()
}

// Allowance is the rate this volume may use now (Unlimited only when the
// budget has no total and the volume asked for no cap). An inactive share
// gets what it would get if it became active with no cap of its own.
func (s *Share) Allowance() Rate {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.alloc
}

// Leave removes the share from the budget; its rate goes to the others.
func (s *Share) Leave() {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.shares {
		if x == s {
			b.shares = append(b.shares[:i], b.shares[i+1:]...)
			break
		}
	}
	b.rebalance()
}

// rebalance recomputes every allowance (max-min fair, water filling).
// Called with b.mu held.
func (b *Budget) rebalance() {
	var active []*Share
	for _, s := range b.shares {
		if s.active {
			active = append(active, s)
		}
	}
	if b.total == Unlimited {
		for _, s := range b.shares {
			s.alloc = s.demand
			if !s.active {
				s.alloc = Unlimited
			}
		}
		return
	}
	// Smallest demands first; Unlimited sorts last.
	sort.SliceStable(active, func(i, j int) bool {
		return demandKey(active[i].demand) < demandKey(active[j].demand)
	})
	left := uint64(b.total)
	for i, s := range active {
		fair := left / uint64(len(active)-i)
		give := fair
		if s.demand != Unlimited && uint64(s.demand) < fair {
			give = uint64(s.demand)
		}
		if give == 0 {
			give = 1 // 0 would mean unlimited
		}
		s.alloc = Rate(give)
		if give <= left {
			left -= give
		} else {
			left = 0
		}
	}
	idle := uint64(b.total) / uint64(len(active)+1)
	if idle == 0 {
		idle = 1
	}
	for _, s := range b.shares {
		if !s.active {
			s.alloc = Rate(idle)
		}
	}
}

// demandKey orders demands with Unlimited as the largest.
func demandKey(r Rate) uint64 {
	if r == Unlimited {
		return ^uint64(0)
	}
	return uint64(r)
}
