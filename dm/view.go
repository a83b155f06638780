package dm

import "context"

// View is the device-mapper devices as one DM_LIST_DEVICES finds them,
// for a pass of lookups over many volumes (one `migrate status`): which
// devices exist and their numbers, listed once at the first lookup
// instead of a DM_DEV_STATUS per lookup. It does not see devices made or
// removed after that: make one per pass, never keep one. It is not safe
// for concurrent use.
type View struct {
	c *Client
	// devs is the list, nil until read.
	devs []ListEntry
	err  error
}

// View returns a view of the client's devices, listed at its first
// lookup.
func (c *Client) View() *View { return &View{c: c} }

func (v *View) list(ctx context.Context) error {
	if v.devs == nil && v.err == nil {
		v.devs, v.err = v.c.List(ctx)
		if v.devs == nil && v.err == nil {
			v.devs = []ListEntry{}
		}
	}
	return v.err
}

// Lookup returns the device named name as the list found it; ok is false
// when there was none.
func (v *View) Lookup(ctx context.Context, name string) (e ListEntry, ok bool, err error) {
	if err := v.list(ctx); err != nil {
		return ListEntry{}, false, err
	}
	for _, d := range v.devs {
		if d.Name == name {
			return d, true, nil
		}
	}
	return ListEntry{}, false, nil
}

// List returns every device the list found.
func (v *View) List(ctx context.Context) ([]ListEntry, error) {
	if err := v.list(ctx); err != nil {
		return nil, err
	}
	return v.devs, nil
}
