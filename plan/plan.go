package plan

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/lunferry/lunferry/internal/crashpoint"
)

// Options configures a Planner.
type Options struct {
	// StateDir holds the volumes' state, the lock, metadata files and hook
	// logs.
	StateDir string
	// Ports are the kernel and outside-world adapters.
	Ports Ports
	// LockWait is how long to wait for another lunferry's lock before
	// failing with ErrLocked; 0 fails at once.
	LockWait time.Duration
	// DryRun: state is neither locked nor written; the ports (dry-run
	// ones, normally) print what they would do.
	DryRun bool
	// Log receives one line per action taken (nil: discarded).
	Log io.Writer
	// Now returns the current time (nil: time.Now).
	Now func() time.Time
	// PollInterval is the period of session and status polls (0: 1s).
	PollInterval time.Duration
	// Heartbeat, when set, is called by Run once its initial restore has
	// finished and then once per control round: a service manager's
	// readiness and watchdog (systemd's Type=notify, see cmd/lunferry).
	Heartbeat func()
}

// Planner runs volumes' migrations: every exported method is one command.
// Methods that change state take the state directory's lock for their
// duration.
type Planner struct {
	o     Options
	store Store
	// dryStep is the last step a dry run reported per volume.
	dryStep map[string]Step
	// inLoop is set while Run's control loop keeps the throttles: only
	// then is a throttled volume's hydration turned on.
	inLoop bool
	// noCounters holds the volumes whose I/O counters the adaptive
	// throttle could not read last time (said once per failing spell).
	noCounters map[string]bool
}

// New returns a Planner. Every port must be set.
func New(o Options) (*Planner, error) {
	if o.StateDir == "" {
		return nil, fmt.Errorf("plan: no state directory given")
	}
	ps := o.Ports
	if ps.Initiator == nil || ps.Mapper == nil || ps.Exporter == nil || ps.Metadata == nil || ps.Hooks == nil || ps.Fencer == nil {
		return nil, fmt.Errorf("plan: initiator, mapper, exporter, metadata, hook and fencer ports are required")
	}
	if o.Ports.Inhibitor == nil {
		o.Ports.Inhibitor = NoInhibitor{}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	return &Planner{o: o, store: Store{Dir: o.StateDir}, dryStep: map[string]Step{}}, nil
}

// Store returns the planner's state store.
func (p *Planner) Store() Store { return p.store }

func (p *Planner) logf(format string, args ...any) {
	fmt.Fprintf(p.o.Log, format+"\n", args...)
}

// locked runs fn under the state directory's lock (none in dry-run mode).
func (p *Planner) locked(ctx context.Context, fn func() error) error {
	if p.o.DryRun {
		return fn()
	}
	l, err := AcquireLock(ctx, p.o.StateDir, p.o.LockWait)
	if err != nil {
		return err
	}
	defer l.Release()
	return fn()
}

// save persists v (prints it in dry-run mode).
func (p *Planner) save(v *Volume) error {
	v.Updated = p.o.Now().UTC()
	if p.o.DryRun {
		if p.dryStep[v.Spec.Name] != v.Step {
			p.logf("state: volume %s would be saved as %s", v.Spec.Name, v.Step)
			p.dryStep[v.Spec.Name] = v.Step
		}
		return nil
	}
	return p.store.Save(v)
}

// push records (and saves) that an object is about to be created, and
// returns its entry; an entry already on the stack is returned as is (a
// resumed step).
func (p *Planner) push(v *Volume, kind ObjectKind, name string) (*Object, error) {
	if o := v.object(kind); o != nil {
		return o, nil
	}
	v.Objects = append(v.Objects, Object{Kind: kind, Name: name, Pending: true})
	if err := p.save(v); err != nil {
		return nil, err
	}
	crashpoint.Hit("push:" + string(kind))
	return &v.Objects[len(v.Objects)-1], nil
}

// created marks the entry of kind created, with its device node.
func (p *Planner) created(v *Volume, kind ObjectKind, dev string) error {
	o := v.object(kind)
	o.Pending = false
	o.Device = dev
	if err := p.save(v); err != nil {
		return err
	}
	crashpoint.Hit("created:" + string(kind))
	return nil
}

// pop removes the entry of kind from the stack after the object is gone.
func (p *Planner) pop(v *Volume, kind ObjectKind) error {
	for i := range v.Objects {
		if v.Objects[i].Kind == kind {
			v.Objects = append(v.Objects[:i], v.Objects[i+1:]...)
			if err := p.save(v); err != nil {
				return err
			}
			crashpoint.Hit("pop:" + string(kind))
			return nil
		}
	}
	return nil
}

// load reads one volume and all volumes (for cross-volume checks).
func (p *Planner) load(name string) (*Volume, []*Volume, error) {
	all, err := p.store.LoadAll()
	if err != nil {
		return nil, nil, err
	}
	for _, v := range all {
		if v.Spec.Name == name {
			return v, all, nil
		}
	}
	return nil, nil, fmt.Errorf("plan: volume %s: %w (see `lunferry volume list`)", name, ErrNotFound)
}

// Add records new volumes (step new) after checking each spec and that no
// two volumes share a name, a LUN or an export IQN.
func (p *Planner) Add(ctx context.Context, specs ...Spec) ([]*Volume, error) {
	var out []*Volume
	err := p.locked(ctx, func() error {
		all, err := p.store.LoadAll()
		if err != nil {
			return err
		}
		for i := range specs {
			s := specs[i]
			s.Normalize()
			if err := s.Validate(); err != nil {
				return err
			}
			if err := checkConflicts(&s, all); err != nil {
				return err
			}
			now := p.o.Now().UTC()
			v := &Volume{Version: StateVersion, Spec: s, Step: StepNew, Created: now}
			all = append(all, v)
			out = append(out, v)
		}
		for _, v := range out {
			if err := p.save(v); err != nil {
				return err
			}
			p.logf("volume %s added", v.Spec.Name)
		}
		return nil
	})
	return out, err
}

// checkConflicts refuses s if another volume that still holds (or may
// hold) kernel objects uses the same name, LUN or export IQN.
func checkConflicts(s *Spec, all []*Volume) error {
	for _, o := range all {
		if o.Spec.Name == s.Name {
			return fmt.Errorf("plan: %w: volume %s exists (%s): choose another name, or remove it first with `lunferry volume remove %s`", ErrConflict, s.Name, o.Step, s.Name)
		}
		if o.Step == StepAborted || o.Step == StepFinalized || o.Step == StepHandedOver {
			continue
		}
		for _, mine := range []struct {
			what string
			lun  LUN
		}{{"old", s.Old}, {"new", s.New}} {
			for _, theirs := range []struct {
				what string
				lun  LUN
			}{{"old", o.Spec.Old}, {"new", o.Spec.New}} {
				if SameLU(mine.lun, theirs.lun) {
					return fmt.Errorf("plan: %w: %s LUN %s %s lun %d is already the %s LUN of volume %s (%s): a LUN can take part in one migration only",
						ErrConflict, mine.what, mine.lun.Portal, mine.lun.IQN, mine.lun.LUN, theirs.what, o.Spec.Name, o.Step)
				}
			}
		}
		if o.Spec.Export.IQN == s.Export.IQN {
			return fmt.Errorf("plan: %w: export IQN %s is already used by volume %s: give each volume its own export IQN",
				ErrConflict, s.Export.IQN, o.Spec.Name)
		}
	}
	return nil
}

// Remove forgets a volume. Only volumes without kernel objects can be
// removed (new, aborted, handed over); a finalized volume still serves the
// host through the proxy, so it is only forgotten with forget set, leaving
// its device and export in place.
func (p *Planner) Remove(ctx context.Context, name string, forget bool) error {
	return p.locked(ctx, func() error {
		v, err := p.store.Load(name)
		if err != nil {
			return err
		}
		if forget && v.Step == StepFinalized {
			p.logf("volume %s forgotten; %s and export %s stay in place serving the host", name, DMName(name), v.Spec.Export.IQN)
		} else if _, err := cmdRemove.check(v); err != nil {
			return err
		}
		if p.o.DryRun {
			p.logf("state: would delete volume %s", name)
			return nil
		}
		return p.store.Delete(name)
	})
}

// List returns every volume, sorted by name.
func (p *Planner) List(ctx context.Context) ([]*Volume, error) {
	return p.store.LoadAll()
}

// Show returns one volume.
func (p *Planner) Show(ctx context.Context, name string) (*Volume, error) {
	return p.store.Load(name)
}

func (p *Planner) metadataPath(name string) string {
	return filepath.Join(p.store.MetadataDir(), name+".meta")
}
