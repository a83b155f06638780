package plan

import (
	"context"
	"errors"
	"fmt"

	"github.com/lunferry/lunferry/internal/crashpoint"
)

// stepFuncs are what a command does beyond the step table.
type stepFuncs struct {
	// before runs under the lock once the step table allows the command
	// and before anything is saved: checks that refuse with nothing
	// changed, and fields the "-ing" step must be saved with.
	before func(v *Volume, all []*Volume) error
	// run is the command's work. For a command with a step pair it runs
	// between the saves of its "-ing" and "-ed" steps (see transition).
	run func(v *Volume, all []*Volume) error
}

// guarded runs command c on volume name: under the state directory's lock
// it loads the volume, asks the step table whether c applies, runs
// f.before, takes the shutdown inhibitor for host-facing commands, and runs
// f.run inside c's transition.
func (p *Planner) guarded(ctx context.Context, c *command, name string, f stepFuncs) (*Volume, error) {
	var v *Volume
	err := p.locked(ctx, func() error {
		var all []*Volume
		var err error
		if v, all, err = p.loadFor(c, name); err != nil {
			return err
		}
		done, err := c.check(v)
		if err != nil || done {
			if done && c.alreadyMsg != "" {
				p.logf("%s", expand(c.alreadyMsg, v))
			}
			return err
		}
		if f.before != nil {
			if err := f.before(v, all); err != nil {
				return err
			}
		}
		if c.inhibit {
			release := p.inhibit("lunferry " + c.name + " of " + name)
			defer release()
		}
		if c.trying == "" {
			return f.run(v, all)
		}
		err = p.transition(ctx, v, c.trying, c.done, func() error { return f.run(v, all) })
		if err != nil && c.onFail != "" {
			err = fmt.Errorf("%w: %s", err, expand(c.onFail, v))
		}
		return err
	})
	return v, err
}

// loadFor loads volume name, with every volume when c needs them.
func (p *Planner) loadFor(c *command, name string) (*Volume, []*Volume, error) {
	if c.allVolumes {
		return p.load(name)
	}
	v, err := p.store.Load(name)
	return v, nil, err
}

// transition is the heart of the state machine: it saves v in trying
// before fn touches the kernel and in done after fn succeeded. When fn
// fails, v stays in trying with the error recorded, so the next run of the
// same command resumes and abort rolls back.
func (p *Planner) transition(ctx context.Context, v *Volume, trying, done Step, fn func() error) error {
	if v.Step != trying {
		v.HooksDone = nil
	}
	v.Step = trying
	v.LastError = ""
	if err := p.save(v); err != nil {
		return err
	}
	crashpoint.Hit("trying:" + string(trying))
	if err := fn(); err != nil {
		v.LastError = err.Error()
		if serr := p.save(v); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	crashpoint.Hit("done:" + string(done))
	v.Step = done
	v.HooksDone = nil
	return p.save(v)
}

func (p *Planner) inhibit(why string) func() {
	release, err := p.o.Ports.Inhibitor.Inhibit(why)
	if err != nil {
		p.logf("note: cannot inhibit shutdown (%v); do not reboot the proxy during this step", err)
		return func() {}
	}
	return release
}
