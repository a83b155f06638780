package lio

import (
	"context"
	"errors"
)

// tx records what one Apply/Restore call created, so that a failure can
// remove exactly that, newest first. Objects that existed before the call
// are never on the stack, so a rollback cannot touch them.
type tx struct {
	r    *Root
	undo []undoStep
}

type undoStep struct {
	desc string
	fn   func() error
}

func (r *Root) newTx() *tx { return &tx{r: r} }

// mkdir creates a configfs group and records its removal.
func (t *tx) mkdir(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.r.fs().Mkdir(p); err != nil {
		return err
	}
	t.undo = append(t.undo, undoStep{"rmdir " + t.r.rel(p), func() error { return t.r.fs().Rmdir(p) }})
	return nil
}

// symlink creates a configfs link and records its removal.
func (t *tx) symlink(ctx context.Context, target, link string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.r.fs().Symlink(target, link); err != nil {
		return err
	}
	t.undo = append(t.undo, undoStep{"unlink " + t.r.rel(link), func() error { return t.r.fs().Remove(link) }})
	return nil
}

// onUndo records an arbitrary undo step (e.g. disabling a TPG it enabled).
func (t *tx) onUndo(desc string, fn func() error) {
	t.undo = append(t.undo, undoStep{desc, fn})
}

// rollback undoes everything recorded, newest first, and returns cause
// joined with any undo failure (which names what the admin must remove).
func (t *tx) rollback(cause error) error {
	var errs []error
	for i := len(t.undo) - 1; i >= 0; i-- {
		if err := t.undo[i].fn(); err != nil {
			errs = append(errs, errf("rollback %s: %w (remove it by hand with targetcli)", t.undo[i].desc, err))
		}
	}
	t.undo = nil
	if len(errs) == 0 {
		return cause
	}
	return errors.Join(append([]error{cause}, errs...)...)
}
