package twopc

// The Recoverer runs recovery at start-up and then periodically, so an
// in-doubt transaction does not hold its locks longer than one interval
// after whatever left it behind has healed.

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// RecovererConfig configures a Recoverer.
type RecovererConfig struct {
	Coordinator *Coordinator // whose node, log and in-flight set recovery uses
	// Shards returns the shards to look at, read afresh for every pass so
	// map changes are followed.
	Shards   func() []ShardAccess
	Interval time.Duration // between passes; default 10s
	Logger   *slog.Logger
}

// Validate reports configuration errors.
func (c RecovererConfig) Validate() error {
	switch {
	case c.Coordinator == nil:
		return errors.New("twopc: RecovererConfig.Coordinator is nil")
	case c.Shards == nil:
		return errors.New("twopc: RecovererConfig.Shards is nil")
	case c.Interval < 0:
		return errors.New("twopc: RecovererConfig.Interval is negative")
	}
	return nil
}

// Recoverer runs recovery passes, one at a time.
type Recoverer struct {
	cfg RecovererConfig
	log *slog.Logger
	// sem holds one token: whoever has it runs a pass. A channel rather
	// than a mutex so that RunOnce can give up when its context ends.
	sem chan struct{}
}

// NewRecoverer returns a Recoverer; Run starts its loop.
func NewRecoverer(cfg RecovererConfig) (*Recoverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Recoverer{cfg: cfg, log: logger, sem: make(chan struct{}, 1)}
	r.sem <- struct{}{}
	return r, nil
}

// Run runs a pass now and then every Interval until ctx ends, and returns
// ctx's error. Failures are logged and retried at the next pass.
func (r *Recoverer) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("twopc: recovery pass incomplete; retrying at the next pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// RunOnce runs a pass now, after any pass in progress, and returns its
// result: tests and the admin API use it to settle things without waiting
// for the timer.
func (r *Recoverer) RunOnce(ctx context.Context) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	select {
	case <-r.sem:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	defer func() { r.sem <- struct{}{} }()

	res, err := r.cfg.Coordinator.Recover(ctx, r.cfg.Shards())
	for _, x := range res.Resolved {
		verb := "rolled back"
		if x.Commit {
			verb = "committed"
		}
		r.log.Info("twopc: recovery "+verb+" an in-doubt transaction", "gid", x.GID, "shard", x.Shard)
	}
	if len(res.Forgotten) > 0 {
		r.log.Debug("twopc: recovery forgot finished decisions", "count", len(res.Forgotten))
	}
	return res, err
}
