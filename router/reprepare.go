package router

// Quiet re-prepare. The proxy keeps statements prepared on server
// connections, so a client that re-parses an unnamed statement after an
// ALTER TABLE would get "cached plan must not change result type" where
// PostgreSQL itself (which re-parses an unnamed statement) would not. When
// the client parsed the statement in the same batch, outside an explicit
// transaction, and no row has reached it yet, the proxy closes the stale
// server statement and replays the batch, hiding the answers the client
// already has. Otherwise the error goes through as PostgreSQL would send it,
// and only the stale server statement is dropped.

import (
	"context"
	"encoding/binary"

	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	staleResultTypeCode = "0A000"
	staleResultTypeMsg  = "cached plan must not change result type"
)

func isBatchMessage(typ byte) bool {
	switch typ {
	case 'P', 'B', 'D', 'E', 'C', 'H':
		return true
	}
	return false
}

// logBatchMessage keeps a copy of the batch's messages until its Sync, in
// case it must be replayed. Batches are small; the copy is a memmove.
func (s *session) logBatchMessage(typ byte, body []byte) {
	if s.replaying {
		return
	}
	if len(s.batch.log) == 0 {
		s.batch.startTx = s.txStatus
		s.batch.number++
		s.batch.sent, s.batch.rows, s.batch.executed = 0, false, false
	}
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(body)+4))
	s.batch.log = append(append(s.batch.log, h[:]...), body...)
}

// batchState follows one extended-protocol batch (up to its Sync).
type batchState struct {
	number  uint64 // counts batches, to tell "parsed in this batch"
	log     []byte // the batch's client messages, framed
	startTx byte   // transaction status when the batch began
	sent    int    // frames already sent to the client for this batch
	rows    bool   // a DataRow or CopyData reached the client
	// executed: an Execute went to the server; a replay would run its
	// side effects twice.
	executed bool
	// changesSettings: a statement of the batch may change settings.
	changesSettings bool
	retried         bool // the batch was replayed once already
	// retry: the batch is being abandoned for a replay; the server's
	// answers up to its ReadyForQuery are hidden.
	retry bool
}

func (b *batchState) reset() {
	if cap(b.log) > 64<<10 {
		b.log = nil
	}
	b.log = b.log[:0]
	b.sent, b.rows, b.retried, b.retry, b.executed, b.changesSettings = 0, false, false, false, false, false
}

// staleStatement reacts to "cached plan must not change result type" on
// the answer to a Bind. It reports whether the error is hidden for a replay.
func (s *session) staleStatement(head *expect, er *pgproto3.ErrorResponse) bool {
	if er.Code != staleResultTypeCode || er.Message != staleResultTypeMsg || (head.kind != 'B' && head.kind != 'D') {
		return false
	}
	name := head.serverName // a rewritten simple query's (literalparams.go)
	if head.stmt != nil {
		name = head.stmt.serverName
	}
	if name == "" {
		return false
	}
	sc := s.server
	sc.forgetPrepared(name)
	sc.toClose = append(sc.toClose, name)
	if head.stmt == nil {
		// The client sent a simple query: the error reaches it, and the
		// next one prepares the statement again.
		return false
	}
	if s.mode != PoolTransaction || s.batch.startTx != 'I' || s.batch.rows || s.batch.retried || s.batch.executedBefore(head) ||
		head.stmt.parsedInBatch != s.batch.number {
		return false
	}
	s.batch.retry = true
	return true
}

// replayBatch runs the batch's messages again after a hidden stale-plan
// error; the client sees each answer once.
func (s *session) replayBatch(ctx context.Context) error {
	log := s.batch.log
	s.batch.log = nil
	s.batch.retry = false
	s.batch.retried = true
	s.suppress = s.batch.sent
	s.batch.sent = 0
	s.replaying = true
	defer func() { s.replaying = false }()
	for len(log) >= 5 {
		typ := log[0]
		n := int(binary.BigEndian.Uint32(log[1:5]))
		body := log[5 : 1+n]
		log = log[1+n:]
		if s.skipping {
			continue
		}
		if err := s.dispatch(ctx, typ, body); err != nil {
			if err := s.handleBatchError(ctx, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// queueHasSync: the batch ends with a Sync, so the client waits for its
// ReadyForQuery and a replay can happen before it.
func (s *session) queueHasSync() bool {
	for i := range s.queue {
		if s.queue[i].kind == 'S' {
			return true
		}
	}
	return false
}

// executedBefore: an Execute reached the server ahead of the failing
// message (its effects happened and must not happen twice); Executes after
// it were skipped by the server.
func (b *batchState) executedBefore(head *expect) bool { return b.executed && head.afterExecute }
