package scsi

import (
	"errors"
	"fmt"
)

// Commander sends one SCSI command that reads data from a logical unit.
// *Device does it with SG_IO; tests replay golden responses.
type Commander interface {
	// DataIn sends cdb and reads at most len(buf) bytes into buf. It
	// returns how many bytes arrived, or an error that wraps a
	// *CheckConditionError or *StatusError when the device refused.
	DataIn(cdb, buf []byte) (int, error)
}

// unitAttentionRetries is how often a command is sent again after a
// UNIT ATTENTION: the first command after a login, a LUN resize or a
// reset meets one, and the report is consumed by it.
const unitAttentionRetries = 3

// dataIn runs cdb through c, sending it again after a UNIT ATTENTION, and
// returns the bytes that arrived.
func dataIn(c Commander, cdb []byte, size int) ([]byte, error) {
	buf := make([]byte, size)
	for i := 0; ; i++ {
		n, err := c.DataIn(cdb, buf)
		if err == nil {
			return buf[:n], nil
		}
		if !errors.Is(err, ErrUnitAttention) || i == unitAttentionRetries {
			return nil, err
		}
	}
}

// dataInGrowing runs a command whose response says its own length: cdb
// is built by mk for an allocation length, total reads the full length
// from the first bytes of a response. It asks once with size bytes and
// again with the full length if the first answer was cut short.
func dataInGrowing(c Commander, mk func(alloc int) []byte, size, limit int, total func([]byte) (int, bool)) ([]byte, error) {
	b, err := dataIn(c, mk(size), size)
	if err != nil {
		return nil, err
	}
	need, ok := total(b)
	if !ok {
		return nil, fmt.Errorf("%w: %s: %d bytes are too short for the header", ErrMalformed, opName(mk(size)[0]), len(b))
	}
	if need <= size { // all of it came, or all the device had
		return b, nil
	}
	need = min(need, limit)
	return dataIn(c, mk(need), need)
}
