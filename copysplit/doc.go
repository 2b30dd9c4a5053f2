// Package copysplit splits the data of COPY ... FROM STDIN (text and CSV
// formats) into rows and finds each row's sharding key, so the router can
// send every row to the shard that owns it.
//
// The client's CopyData messages are chunked arbitrarily: a row may span
// messages and a message may hold many rows. A Splitter is fed each
// message's payload and calls back once per complete row with the row's
// bytes exactly as sent (to forward unchanged) and the key field's value,
// de-escaped or de-quoted, or NULL:
//
//	s, err := copysplit.New(copysplit.Options{CSV: true, KeyField: 0, KeyName: "id"})
//	for each CopyData: err = s.Feed(payload, emit)
//	at CopyDone:       err = s.End(emit)
//
// Rows are found exactly as PostgreSQL 15's COPY FROM finds them
// (copyfromparse.c): line endings \n, \r or \r\n, fixed by the first line;
// in text format backslash escapes (\N, \t, \n, octal \ooo, hex \xhh, ...)
// and the \. end marker anywhere in a line; in CSV quoted fields spanning
// lines, doubled quotes or the ESCAPE character, NULL as an unquoted
// string only, \. only alone on a line; the HEADER line, reported apart.
// That is the point: each shard receives a subset of the rows, and must
// read each one as a single server reading the whole stream would. What
// would make the server reject the stream's framing (a stray carriage
// return, a corrupt end marker, an unterminated quoted field, too few
// fields to reach the key) is reported with PostgreSQL's SQLSTATE and
// message as a *pgerror.Error; everything else about a row (types, extra
// columns, encoding) is left to the shard that receives it.
//
// The package is pure: no I/O, no package-level state. On the steady path
// (rows within one chunk) it allocates nothing: rows and keys are slices
// of the input, and a row that spans chunks or a key with escapes is
// assembled in a buffer the Splitter reuses.
package copysplit
