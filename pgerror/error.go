package pgerror

import (
	"errors"
	"fmt"
)

// Severity values as PostgreSQL spells them in ErrorResponse.
const (
	SeverityError = "ERROR"
	SeverityFatal = "FATAL"
)

// Error is an error meant for a client: it carries what a PostgreSQL
// ErrorResponse carries. The wire layer turns it into one; every other layer
// just returns it (possibly wrapped).
type Error struct {
	Severity string
	Code     Code
	Message  string
	Detail   string
	Hint     string
	// Position is the 1-based character position in the statement, 0 if none.
	Position int
	// Cause is the underlying error, kept for logs and errors.Is/As.
	Cause error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s (SQLSTATE %s)", e.severity(), e.Message, e.Code)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

// SQLState returns the code, matching pgconn.PgError's method so callers can
// probe either with a small interface.
func (e *Error) SQLState() string { return string(e.Code) }

func (e *Error) severity() string {
	if e.Severity == "" {
		return SeverityError
	}
	return e.Severity
}

// New returns an ERROR-severity client error.
func New(code Code, format string, args ...any) *Error {
	return &Error{Severity: SeverityError, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Fatal returns a FATAL-severity client error: the connection ends after it.
func Fatal(code Code, format string, args ...any) *Error {
	return &Error{Severity: SeverityFatal, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns a client error with the given code whose cause is err.
func Wrap(err error, code Code, format string, args ...any) *Error {
	return &Error{Severity: SeverityError, Code: code, Message: fmt.Sprintf(format, args...), Cause: err}
}

// WithHint returns a copy of e with the hint set.
func (e *Error) WithHint(format string, args ...any) *Error {
	c := *e
	c.Hint = fmt.Sprintf(format, args...)
	return &c
}

// WithDetail returns a copy of e with the detail set.
func (e *Error) WithDetail(format string, args ...any) *Error {
	c := *e
	c.Detail = fmt.Sprintf(format, args...)
	return &c
}

// From finds the client error in err's chain. Errors that carry none become
// an internal error (XX000) whose message is err's text, so a client always
// gets a SQLSTATE.
func From(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Severity: SeverityError, Code: InternalError, Message: err.Error(), Cause: err}
}
