package merge

// The errors merge returns: always a *pgerror.Error with the SQLSTATE and
// message PostgreSQL itself would give, so a client cannot tell the proxy
// computed the answer. The codes missing from package pgerror are named
// here (see the report: they belong there).

import (
	"github.com/shardproxy/shardproxy/pgerror"
)

const (
	codeNumericValueOutOfRange  pgerror.Code = "22003"
	codeDatetimeValueOutOfRange pgerror.Code = "22008"
	codeInvalidRowCountLimit    pgerror.Code = "2201W"
	codeInvalidRowCountOffset   pgerror.Code = "2201X"
	codeInvalidBinary           pgerror.Code = "22P03"
	codeUndefinedParameter      pgerror.Code = "42P02"
)

// unsupported is the answer for a shape the proxy cannot evaluate exactly:
// refusing is always better than a wrong answer.
func unsupported(hint string, format string, args ...any) *pgerror.Error {
	e := pgerror.New(pgerror.FeatureNotSupported, format, args...)
	e.Hint = hint
	return e
}

// internal reports a plan or input that breaks merge's contract (a planner
// or router bug, never the client's doing).
func internal(format string, args ...any) *pgerror.Error {
	return pgerror.New(pgerror.InternalError, "merge: "+format, args...)
}

func outOfRange(format string, args ...any) *pgerror.Error {
	return pgerror.New(codeNumericValueOutOfRange, format, args...)
}

// badInput is PostgreSQL's message for a literal or parameter that does
// not parse as its type.
func badInput(typ, s string) *pgerror.Error {
	return pgerror.New(pgerror.InvalidTextRepresentation, "invalid input syntax for type %s: %s", typ, quoteValue(s))
}

// badBinary is a malformed binary value from a client parameter (the
// shards' own values are trusted but still checked: see decode).
func badBinary(typ string) *pgerror.Error {
	return pgerror.New(codeInvalidBinary, "incorrect binary data format for type %s", typ)
}

func quoteValue(s string) string { return `"` + s + `"` }

func pgerrorNoParam(n int) error {
	return pgerror.New(codeUndefinedParameter, "there is no parameter $%d", n)
}

func pgerrorNegative(code pgerror.Code, msg string) error {
	return pgerror.New(code, "%s", msg)
}
