// Package twopc commits a transaction that wrote to several shards
// atomically, with PostgreSQL's two-phase commit, and settles the
// transactions a crash leaves prepared.
//
// The router opens a transaction on each shard it writes to, and at COMMIT
// hands the shards' connections, as Participants, to Coordinator.Commit:
//
//	PREPARE TRANSACTION '<gid>'   on every participant (sent to all, then read)
//	decision COMMIT <gid>         durable in the DecisionLog
//	COMMIT PREPARED '<gid>'       on every participant (the same way)
//	Done <gid>                    the decision may be forgotten
//
// A failure before the decision rolls everything back; after it, nothing
// can stop the transaction from committing: what the coordinator cannot
// finish, recovery does. Recover (run by a Recoverer at start-up and every
// interval) lists each shard's prepared transactions and settles this
// node's: COMMIT PREPARED if the log holds a decision, ROLLBACK PREPARED if
// it does not (presumed abort), skipping those the Coordinator is
// committing right now.
//
// Gids ("shardproxy:<node>:<time>.<random>", see NewGID) name the node that
// coordinated the transaction, so each node recovers only its own. The
// DecisionLog is an interface; FileLog keeps it in <data_dir>/twopc until
// decisions move into Raft. DESIGN.md states the protocol's invariants.
//
// The package knows nothing of connection types: Participant and Conn are
// one-method-and-a-bit interfaces, and recovery reaches shards through
// functions the caller supplies. It logs only through the *slog.Logger it
// is given, and keeps no package-level state.
package twopc
