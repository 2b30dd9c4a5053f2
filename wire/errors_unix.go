package wire

import (
	"errors"
	"syscall"
)

// outOfFiles reports whether accept failed because the process or system
// ran out of file descriptors; the accept loop then backs off instead of
// spinning.
func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
