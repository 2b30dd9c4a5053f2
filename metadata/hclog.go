package metadata

// hashicorp/raft logs through hclog; the project logs through an injected
// *slog.Logger. This adapter sends raft's warnings and errors to that
// logger and drops the rest: raft's info and debug lines (every election,
// every snapshot) are noise next to the proxy's own logs, and a test's
// logger stays quiet unless something is wrong.

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

type hclogAdapter struct {
	logger  *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(l *slog.Logger, name string) hclog.Logger {
	return &hclogAdapter{logger: l, name: name}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	var sl slog.Level
	switch level {
	case hclog.Warn:
		sl = slog.LevelWarn
	case hclog.Error:
		sl = slog.LevelError
	default:
		return
	}
	attrs := append([]any{"component", a.name}, a.implied...)
	a.logger.Log(context.Background(), sl, msg, append(attrs, args...)...)
}

func (a *hclogAdapter) Trace(msg string, args ...any) {}
func (a *hclogAdapter) Debug(msg string, args ...any) {}
func (a *hclogAdapter) Info(msg string, args ...any)  {}
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) IsTrace() bool { return false }
func (a *hclogAdapter) IsDebug() bool { return false }
func (a *hclogAdapter) IsInfo() bool  { return false }
func (a *hclogAdapter) IsWarn() bool  { return true }
func (a *hclogAdapter) IsError() bool { return true }

func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.implied = append(append([]any(nil), a.implied...), args...)
	return &c
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel is ignored: the slog logger's handler decides what is shown.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level { return hclog.Warn }

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return a.StandardLogger(opts).Writer()
}
