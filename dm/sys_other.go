//go:build !linux

package dm

func openControl(string) (controlFile, error) { return nil, ErrNotImplemented }

type nodeKind int

const (
	nodeMissing nodeKind = iota
	nodeBlock
	nodeChar
	nodeOther
)

func statNode(string) (nodeKind, DevNum, error) { return nodeMissing, DevNum{}, ErrNotImplemented }
func isSymlink(string) bool                     { return false }
func mknod(string, bool, DevNum) error          { return ErrNotImplemented }
