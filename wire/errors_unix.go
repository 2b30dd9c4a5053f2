package wire

import "syscall"

// errTooManyFiles is what accept returns when the process is out of file
// descriptors; the accept loop backs off instead of failing.
var errTooManyFiles error = syscall.EMFILE
