package twopc

// The coordinator runs one distributed commit for the router: PREPARE on
// every participant, the durable decision, COMMIT PREPARED. It knows
// nothing of connections beyond Participant, so the router's server
// connections, a pgx connection in a test and a fake all drive it alike.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/pgerror"
)

// Participant is one shard's connection inside the distributed
// transaction. Exec runs one simple-protocol statement and returns its
// command tag: PostgreSQL answers PREPARE TRANSACTION in a failed (or no)
// transaction with the tag ROLLBACK and no error, so the tag matters.
type Participant interface {
	Name() string // the shard id, for errors and logs
	Exec(ctx context.Context, sql string) (tag string, err error)
}

// Hooks let tests stop the protocol at its crash points. Each runs on the
// committing goroutine; a hook that kills the process simulates a crash
// exactly there.
type Hooks struct {
	AfterPrepare  func(gid string) // every participant prepared, no decision yet
	AfterDecision func(gid string) // decision durable, nothing committed yet
}

// Config configures a Coordinator.
type Config struct {
	NodeID string      // this node; embedded in every gid (see NewGID)
	Log    DecisionLog // where decisions go
	Logger *slog.Logger
	Hooks  Hooks
	// ResolveTimeout bounds the second phase (COMMIT PREPARED, or the
	// rollbacks after a failed PREPARE), which runs even when the
	// caller's context is cancelled: once started it must not be cut
	// short by the client going away. Recovery bounds each of its
	// operations on a shard (listing, settling one gid) by it too.
	// Default 30s.
	ResolveTimeout time.Duration
	// ForeignAfter: with a shared log (Aborter), recovery also settles
	// other nodes' prepared transactions once they are this old (their
	// coordinator has had time to finish); 0 leaves them alone.
	ForeignAfter time.Duration
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	if err := CheckNodeID(c.NodeID); err != nil {
		return err
	}
	if c.Log == nil {
		return errors.New("twopc: Config.Log is nil")
	}
	if c.ResolveTimeout < 0 {
		return errors.New("twopc: Config.ResolveTimeout is negative")
	}
	return nil
}

// ErrRolledBack is wrapped by Commit's error when a participant's
// transaction had already failed, so PREPARE TRANSACTION rolled it back.
// PostgreSQL answers COMMIT of a failed transaction with the tag ROLLBACK
// and no error; the router does the same.
var ErrRolledBack = errors.New("twopc: the transaction had failed on a participant and was rolled back")

// ErrInDoubt is wrapped by Commit's error when the decision could not be
// recorded and it is not known whether it was: every participant stays
// prepared and recovery settles the outcome. The error is also a
// *pgerror.Error with SQLSTATE 08007 (transaction_resolution_unknown).
var ErrInDoubt = errors.New("twopc: commit outcome unknown")

// transactionResolutionUnknown is PostgreSQL's 08007.
const transactionResolutionUnknown pgerror.Code = "08007"

// undefinedObject is PostgreSQL's 42704, what COMMIT PREPARED of a gid no
// longer prepared answers.
const undefinedObject = "42704"

// Coordinator commits distributed transactions and remembers which ones it
// is committing right now, so that recovery in the same process leaves
// them alone. Safe for concurrent use.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	// incarnation is in every gid this coordinator makes; started is when
	// it was made. A gid of this node id with another incarnation, made
	// after started, comes from another live process with the same node
	// id: recovery leaves it to that process (see Recover).
	incarnation uint32
	started     time.Time

	mu       sync.Mutex
	inFlight map[string]struct{}
}

// NewCoordinator returns a coordinator for cfg.
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ResolveTimeout == 0 {
		cfg.ResolveTimeout = defaultResolveTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{cfg: cfg, log: logger, incarnation: rand.Uint32(), started: time.Now(), inFlight: make(map[string]struct{})}, nil
}

// NewGID returns a fresh gid of this node.
func (c *Coordinator) NewGID() string { return newGID(c.cfg.NodeID, c.incarnation) }

// InFlight reports whether this coordinator is committing gid right now.
func (c *Coordinator) InFlight(gid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.inFlight[gid]
	return ok
}

// Commit commits the transaction open on every participant. Each must be
// inside a transaction block (BEGIN ... with the statements done) on a
// connection nobody else uses until Commit returns.
//
//   - PREPARE TRANSACTION runs on each participant: on all at once when
//     they are all Pipeliners, else in the given order, stopping at the
//     first failure. If one fails, those prepared get ROLLBACK PREPARED,
//     those not reached ROLLBACK, and the error wraps the first failing
//     participant's own (a *pgconn.PgError from pgx passes through for
//     errors.As), or ErrRolledBack if its transaction had already failed.
//   - The COMMIT decision is recorded. If that fails the transaction is
//     rolled back when the log says the decision was certainly not
//     recorded, and otherwise left prepared for recovery (ErrInDoubt).
//   - COMMIT PREPARED runs on each participant, even if ctx is cancelled
//     (bounded by Config.ResolveTimeout). A failure there is logged, not
//     returned: the transaction is committed, and recovery finishes it.
//     Except a participant whose prepared transaction is gone: someone
//     else settled it, perhaps by rolling it back (another process with
//     this node id), so the outcome there is unknown: ErrInDoubt, 08007.
//
// One participant needs no decision: a plain COMMIT is sent instead.
func (c *Coordinator) Commit(ctx context.Context, gid string, ps []Participant) error {
	if len(ps) == 0 {
		return nil
	}
	if node, _, ok := ParseGID(gid); !ok || node != c.cfg.NodeID {
		// Recovery finds only this node's gids; anything else would be
		// left prepared forever after a crash.
		return fmt.Errorf("twopc: gid %q was not made by NewGID for node %q", gid, c.cfg.NodeID)
	}
	if err := c.begin(gid); err != nil {
		return err
	}
	defer c.end(gid)

	if len(ps) == 1 {
		return c.commitOne(ctx, ps[0])
	}

	prepare := prepareSQL(gid)
	prepared := runPhase(ctx, ps, func(int) string { return prepare }, "PREPARE TRANSACTION", true)
	if i := firstFailure(prepared); i >= 0 {
		c.abort(ctx, gid, ps, prepared)
		return fmt.Errorf("twopc: PREPARE TRANSACTION on shard %s: %w", ps[i].Name(), prepared[i].err)
	}
	if h := c.cfg.Hooks.AfterPrepare; h != nil {
		h(gid)
	}

	if err := ctx.Err(); err != nil {
		c.abort(ctx, gid, ps, prepared)
		return fmt.Errorf("twopc: before the commit decision: %w", err)
	}
	if err := c.cfg.Log.Commit(ctx, gid); err != nil {
		if errors.Is(err, ErrNotRecorded) {
			c.abort(ctx, gid, ps, prepared)
			return fmt.Errorf("twopc: recording the commit decision: %w", err)
		}
		c.log.Error("twopc: commit decision in doubt; the transaction stays prepared until recovery settles it",
			"gid", gid, "err", err)
		return pgerror.Wrap(fmt.Errorf("%w: recording the decision for %s: %w", ErrInDoubt, gid, err),
			transactionResolutionUnknown,
			"could not record the commit decision of a distributed transaction; it will be committed or rolled back by recovery")
	}
	if h := c.cfg.Hooks.AfterDecision; h != nil {
		h(gid)
	}

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ResolveTimeout)
	defer cancel()
	commit := commitSQL(gid)
	complete := true
	var vanished []string
	committed := runPhase(rctx, ps, func(int) string { return commit }, "COMMIT PREPARED", false)
	for i, p := range ps {
		err := committed[i].err
		switch {
		case err == nil:
		case sqlState(err) == undefinedObject:
			// Gone although it prepared: nothing in this process settles
			// a gid in flight, so something else did, most likely the
			// recovery of another process running with this node_id,
			// which takes it for a leftover and rolls it back.
			complete = false
			vanished = append(vanished, p.Name())
			c.log.Error("twopc: a prepared transaction was settled by someone else before its COMMIT PREPARED; "+
				"if another shardproxy runs with this node_id it rolled it back, and the transaction is committed on some shards only",
				"gid", gid, "shard", p.Name(), "node_id", c.cfg.NodeID)
		default:
			complete = false
			c.log.Warn("twopc: COMMIT PREPARED failed after the commit decision; recovery will finish it",
				"gid", gid, "shard", p.Name(), "err", err)
		}
	}
	if complete {
		if err := c.cfg.Log.Done(rctx, gid); err != nil {
			c.log.Warn("twopc: marking a decision done failed; recovery will retry", "gid", gid, "err", err)
		}
	}
	if len(vanished) > 0 {
		return pgerror.Wrap(fmt.Errorf("%w: %s was settled by someone else on shard %s before COMMIT PREPARED", ErrInDoubt, gid, strings.Join(vanished, ", ")),
			transactionResolutionUnknown,
			"the outcome of a distributed transaction is unknown: on shard %s something else settled it before its COMMIT PREPARED", strings.Join(vanished, ", ")).
			WithHint("check that no other shardproxy runs with node_id %q: two nodes with one node_id roll back each other's two-phase commits", c.cfg.NodeID)
	}
	return nil
}

// commitOne commits a transaction with a single participant: with nobody
// to agree with, a plain COMMIT is atomic on its own.
func (c *Coordinator) commitOne(ctx context.Context, p Participant) error {
	tag, err := p.Exec(ctx, "COMMIT")
	if err == nil && tag != "COMMIT" {
		err = tagError(tag)
	}
	if err != nil {
		return fmt.Errorf("twopc: COMMIT on shard %s: %w", p.Name(), err)
	}
	return nil
}

// abort undoes a transaction whose decision was not recorded, from what
// each participant made of PREPARE: ROLLBACK PREPARED where it prepared,
// ROLLBACK where it was not sent (still open) or failed with a server
// error (which may leave the block open and aborted). A participant whose
// PREPARE failed without a server error is left alone: its connection
// broke, and if it did prepare, recovery rolls it back, since no decision
// exists.
func (c *Coordinator) abort(ctx context.Context, gid string, ps []Participant, prepared []outcome) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ResolveTimeout)
	defer cancel()
	rollbackPrepared := rollbackSQL(gid)
	sqlFor := func(i int) string {
		switch o := prepared[i]; {
		case o.ok():
			return rollbackPrepared
		case !o.ran, hasSQLState(o.err):
			return "ROLLBACK"
		}
		return ""
	}
	outs := runPhase(rctx, ps, sqlFor, "", false)
	for i, o := range outs {
		if o.err != nil {
			c.log.Warn("twopc: rolling back a participant failed; recovery will roll it back",
				"gid", gid, "shard", ps[i].Name(), "statement", sqlFor(i), "err", o.err)
		}
	}
}

func (c *Coordinator) begin(gid string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.inFlight[gid]; ok {
		return fmt.Errorf("twopc: gid %s is already being committed", gid)
	}
	c.inFlight[gid] = struct{}{}
	return nil
}

func (c *Coordinator) end(gid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inFlight, gid)
}

// Recover resolves this node's in-doubt transactions on shards, leaving
// alone those this coordinator is committing right now, and those another
// live process running with this node id made since this coordinator
// started: that process's decisions are not in this log, and its
// transactions in flight would be rolled back halfway. Such a process's
// leftovers are settled when it (or a node started after they were made)
// runs recovery. Gids made before the start are taken for leftovers of
// earlier runs, as they must be after a crash.
func (c *Coordinator) Recover(ctx context.Context, shards []ShardAccess) (Result, error) {
	res, err := recoverShards(ctx, c.cfg.Log, c.cfg.NodeID, shards, c.InFlight, c.byTwin, c.cfg.ForeignAfter, c.cfg.ResolveTimeout)
	if res.Twin > 0 {
		c.log.Error("twopc: another process runs with this node_id: its prepared transactions were left alone; give every node that uses these shards its own node_id",
			"node_id", c.cfg.NodeID, "prepared", res.Twin)
	}
	return res, err
}

// byTwin reports a gid of this node id that another process made since
// this coordinator started.
func (c *Coordinator) byTwin(gid string) bool {
	node, created, ok := ParseGID(gid)
	if !ok || node != c.cfg.NodeID || !created.After(c.started) {
		return false
	}
	inc, ok := incarnationOf(gid)
	return ok && inc != c.incarnation
}

func tagError(tag string) error {
	if tag == "ROLLBACK" {
		return ErrRolledBack
	}
	return fmt.Errorf("twopc: unexpected command tag %q", tag)
}

// sqlStater is what a server's error looks like (pgconn.PgError,
// pgerror.Error), probed rather than imported.
type sqlStater interface{ SQLState() string }

func hasSQLState(err error) bool {
	var s sqlStater
	return errors.As(err, &s) && s.SQLState() != ""
}

func sqlState(err error) string {
	var s sqlStater
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}
