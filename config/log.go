package config

import (
	"io"
	"log/slog"
)

// Logger builds the node's logger from Log. It lives here so that every
// command (serve, demo) reads log settings the same way; packages below cmd
// get the *slog.Logger injected and never look at Config.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo // Validate has refused anything unknown
	switch c.Log.Level {
	case LogDebug:
		level = slog.LevelDebug
	case LogWarn:
		level = slog.LevelWarn
	case LogError:
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
