package clone

import (
	"sort"
	"sync"
)

// Budget splits one total hydration rate among the volumes of a Regulator
// (RegulatorOptions.Budget). Each volume holds a share and reports whether
// it is active (hydrating) and how much it wants (its own throttle, or what
// its device can actually take). The total is divided max-min fair:
// volumes that want less than an equal part get what they want, the rest
// is split evenly among the others, and what paused or finished volumes
// would have used goes to the active ones. A Budget is safe for concurrent
// use.
type Budget struct {
	mu     sync.Mutex
	total  Rate
	shares []*share
}

// share is one volume's part of a Budget.
type share struct {
	b      *Budget
	active bool
	demand Rate // Paused = nothing, Unlimited = as much as it can get
	alloc  Rate
}

// NewBudget returns a budget of total bytes per second (Unlimited = no
// common cap; each volume then runs at its own throttle; Paused = every
// volume held).
func NewBudget(total Rate) *Budget { return &Budget{total: total} }

// join adds a volume (inactive until its first set) and returns its share.
func (b *Budget) join() *share {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &share{b: b}
	b.shares = append(b.shares, s)
	b.rebalance()
	return s
}

// set reports whether the volume is hydrating and the rate it wants
// (Paused = nothing, Unlimited = as much as it can get), and rebalances
// the budget.
func (s *share) set(active bool, demand Rate) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.active == active && s.demand == demand {
		return
	}
	s.active, s.demand = active, demand
	s.b.rebalance()
}

// allowance is the rate this volume may use now (Unlimited only when the
// budget has no total and the volume asked for no cap). An inactive share
// gets what it would get if it became active with no cap of its own.
func (s *share) allowance() Rate {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.alloc
}

// leave removes the share from the budget; its rate goes to the others.
func (s *share) leave() {
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
// A total smaller than the number of volumes rounds some shares down to
// Paused, the safe side. Called with b.mu held.
func (b *Budget) rebalance() {
	var active []*share
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
	// Smallest demands first (Paused first, Unlimited last): each takes
	// what it wants up to an equal part of what is left.
	sort.SliceStable(active, func(i, j int) bool { return active[i].demand < active[j].demand })
	left := b.total
	for i, s := range active {
		s.alloc = min(s.demand, left/Rate(len(active)-i))
		left -= s.alloc
	}
	idle := b.total / Rate(len(active)+1)
	for _, s := range b.shares {
		if !s.active {
			s.alloc = idle
		}
	}
}
