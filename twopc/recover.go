package twopc

// Recovery: after a crash (of the proxy, a shard or the network between),
// prepared transactions stay behind holding their locks. This file finds
// this node's and settles each by the decision log: a decision means
// COMMIT PREPARED, none means ROLLBACK PREPARED.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ListPreparedSQL lists the prepared transactions of every database of one
// server whose gid looks like ours. Recovery asks each shard primary for
// it through ShardAccess.List.
const ListPreparedSQL = `SELECT gid, database, owner FROM pg_prepared_xacts WHERE gid LIKE 'shardproxy:%' ORDER BY prepared`

// Prepared is one row of ListPreparedSQL.
type Prepared struct {
	GID      string
	Database string // COMMIT/ROLLBACK PREPARED must run in this database
	Owner    string // ... as this role or a superuser
}

// Conn is a connection recovery resolves prepared transactions on.
type Conn interface {
	Exec(ctx context.Context, sql string) (tag string, err error)
	Close(ctx context.Context) error
}

// Connector opens a connection to a shard's primary, in database, as owner
// or as a superuser: PostgreSQL runs COMMIT PREPARED only there.
type Connector func(ctx context.Context, shardID, database, owner string) (Conn, error)

// ShardAccess is how recovery reaches one shard. The list given to Recover
// must hold every shard that may have prepared transactions of this node,
// or a decision could be forgotten while a participant still needs it.
type ShardAccess struct {
	ID      string
	List    func(ctx context.Context) ([]Prepared, error) // runs ListPreparedSQL on the primary
	Connect Connector
}

// Resolution is one prepared transaction recovery settled.
type Resolution struct {
	Shard, GID string
	Commit     bool // COMMIT PREPARED; false: ROLLBACK PREPARED
}

// Result says what a recovery pass did.
type Result struct {
	Resolved  []Resolution
	InFlight  int      // prepared transactions left to the coordinator committing them
	Twin      int      // made by another live process with this node id, left to it
	Foreign   int      // prepared transactions of other nodes, left alone
	Forgotten []string // decisions marked Done: no shard holds their gid any more
}

// Recover settles nodeID's prepared transactions on shards by the decision
// log. inFlight (may be nil) reports gids a coordinator in this process is
// committing right now; they are skipped, because their missing decision
// may be about to be written. Errors for one shard or gid do not stop the
// others; they come back joined, and what was done is in the Result. Each
// operation on a shard gets 30 s: a shard that keeps its connections open
// without answering holds back only its own prepared transactions.
func Recover(ctx context.Context, log DecisionLog, nodeID string, shards []ShardAccess, inFlight func(gid string) bool) (Result, error) {
	return recoverShards(ctx, log, nodeID, shards, inFlight, nil, 0, defaultResolveTimeout)
}

// defaultResolveTimeout bounds a phase of a commit, and each recovery
// operation on a shard.
const defaultResolveTimeout = 30 * time.Second

// recoverShards is Recover that, with a shared log (Aborter) and
// foreignAfter > 0, also settles other nodes' prepared transactions older
// than foreignAfter. twin (may be nil) reports gids of nodeID that
// another live process made (Coordinator.byTwin); they are left alone.
func recoverShards(ctx context.Context, log DecisionLog, nodeID string, shards []ShardAccess, inFlight, twin func(gid string) bool, foreignAfter, opTimeout time.Duration) (Result, error) {
	var res Result
	aborter, shared := log.(Aborter)
	if err := CheckNodeID(nodeID); err != nil {
		return res, err
	}
	busy := func(gid string) bool { return inFlight != nil && inFlight(gid) }
	// Taken before listing: a decision recorded after this point belongs
	// to a transaction still in flight, and is not ours to forget.
	pending, err := log.Pending()
	if err != nil {
		return res, fmt.Errorf("twopc: recovery: %w", err)
	}
	var errs []error
	// held: gids some shard still holds after this pass (in flight,
	// failed to resolve). A gid listed and settled everywhere is not held.
	held := make(map[string]bool)
	listedAll := true
	for _, sh := range shards {
		// Every operation on the shard is bounded: one that hangs (a
		// COMMIT PREPARED waiting for a synchronous standby that is
		// gone, a server that stopped answering) must not stop recovery
		// of the other shards, pass after pass.
		lctx, cancel := context.WithTimeout(ctx, opTimeout)
		list, err := sh.List(lctx)
		cancel()
		if err != nil {
			listedAll = false
			errs = append(errs, fmt.Errorf("twopc: recovery: listing prepared transactions on shard %s: %w", sh.ID, err))
			continue
		}
		conns := make(map[[2]string]Conn)
		for i, p := range list {
			node, created, ok := ParseGID(p.GID)
			if !ok {
				res.Foreign++
				continue
			}
			if node != nodeID && (!shared || foreignAfter <= 0 || time.Since(created) < foreignAfter) {
				res.Foreign++
				continue
			}
			if twin != nil && twin(p.GID) {
				res.Twin++
				continue
			}
			// In-flight first, decision second: a gid that is not in
			// flight now can never gain a decision later.
			if busy(p.GID) {
				held[p.GID] = true
				res.InFlight++
				continue
			}
			commit, err := log.Decided(p.GID)
			if err == nil && !commit && shared {
				// Record the abort first: a live coordinator must not
				// commit what recovery rolls back.
				commit, err = aborter.Abort(ctx, p.GID)
			}
			if err != nil {
				held[p.GID] = true
				errs = append(errs, fmt.Errorf("twopc: recovery: decision for %s: %w", p.GID, err))
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, opTimeout)
			done, err := resolve(rctx, sh, conns, p, commit)
			timedOut := rctx.Err() != nil && ctx.Err() == nil
			cancel()
			if err != nil {
				held[p.GID] = true
				errs = append(errs, err)
			} else if done {
				res.Resolved = append(res.Resolved, Resolution{Shard: sh.ID, GID: p.GID, Commit: commit})
			}
			if timedOut {
				// The shard hangs: its other gids wait for the next
				// pass rather than 30 s each now.
				for _, q := range list[i+1:] {
					held[q.GID] = true
				}
				errs = append(errs, fmt.Errorf("twopc: recovery: shard %s did not answer within %s; its other prepared transactions wait for the next pass", sh.ID, opTimeout))
				break
			}
		}
		closeConns(ctx, conns, opTimeout)
	}
	// Forgetting a decision needs proof that no participant still waits
	// for it, and a shard that could not be listed gives none.
	if listedAll {
		for _, gid := range pending {
			if held[gid] || busy(gid) {
				continue
			}
			if err := log.Done(ctx, gid); err != nil {
				errs = append(errs, fmt.Errorf("twopc: recovery: forgetting %s: %w", gid, err))
				continue
			}
			res.Forgotten = append(res.Forgotten, gid)
		}
	}
	return res, errors.Join(errs...)
}

// closeConns closes recovery's connections to a shard, each within
// timeout (a hung server must not hold the pass here either).
func closeConns(ctx context.Context, conns map[[2]string]Conn, timeout time.Duration) {
	for _, c := range conns {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		c.Close(cctx)
		cancel()
	}
}

// resolve runs COMMIT or ROLLBACK PREPARED for p on a connection to its
// database (one per database and owner). done is false when the
// transaction was already gone: someone else (the coordinator finishing
// late, another recovery pass) settled it in the meantime.
func resolve(ctx context.Context, sh ShardAccess, conns map[[2]string]Conn, p Prepared, commit bool) (done bool, err error) {
	key := [2]string{p.Database, p.Owner}
	conn, ok := conns[key]
	if !ok {
		conn, err = sh.Connect(ctx, sh.ID, p.Database, p.Owner)
		if err != nil {
			return false, fmt.Errorf("twopc: recovery: connecting to shard %s, database %s as %s: %w", sh.ID, p.Database, p.Owner, err)
		}
		conns[key] = conn
	}
	sql, want := rollbackSQL(p.GID), "ROLLBACK PREPARED"
	if commit {
		sql, want = commitSQL(p.GID), "COMMIT PREPARED"
	}
	tag, err := conn.Exec(ctx, sql)
	if err == nil && tag != want {
		err = tagError(tag)
	}
	switch {
	case err == nil:
		return true, nil
	case sqlState(err) == undefinedObject: // no such prepared transaction
		return false, nil
	}
	// The connection may be unusable now; the next gid gets a fresh one.
	delete(conns, key)
	conn.Close(ctx)
	return false, fmt.Errorf("twopc: recovery: %s on shard %s: %w", sql, sh.ID, err)
}
