package router

// The two pieces the distributed path borrows: package merge evaluates a
// plan's merge primitives over the shards' rows, package twopc commits a
// transaction on several shards.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
	"github.com/shardproxy/shardproxy/twopc"
)

type mergedRows struct {
	fields []pgproto3.FieldDescription
	rows   [][][]byte
}

// mergeRows evaluates the plan's merge primitives over the shards' rows.
func mergeRows(root planner.Primitive, answers []shardAnswer, params *boundParams) (*mergedRows, error) {
	shards := make([]merge.Rows, len(answers))
	for i, a := range answers {
		shards[i] = merge.Rows{Fields: a.fields, Values: a.rows}
	}
	ps := make([]merge.Param, len(params.values))
	for i, v := range params.values {
		ps[i] = merge.Param{Value: v, Format: params.format(i), OID: params.oid(i)}
	}
	out, err := merge.Run(root, shards, ps)
	if err != nil {
		return nil, err
	}
	return &mergedRows{fields: out.Fields, rows: out.Values}, nil
}

// participant is a shard connection in a two-phase commit.
type participant struct {
	id string
	sc *serverConn
}

var (
	_ twopc.Participant = participant{}
	_ twopc.Pipeliner   = participant{}
)

func (p participant) Name() string { return p.id }

func (p participant) Exec(ctx context.Context, sql string) (string, error) {
	if err := p.Send(ctx, sql); err != nil {
		return "", err
	}
	return p.Receive(ctx)
}

// Send and Receive let the coordinator send a phase's statement to every
// shard before it reads any answer. Both give up when ctx ends: twopc
// bounds the second phase with its ResolveTimeout, and a shard that keeps
// the connection open without answering (a COMMIT PREPARED waiting for a
// synchronous standby that is gone) must not hold the client past it.
func (p participant) Send(ctx context.Context, sql string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not sent to shard %s: %w", p.id, err)
	}
	undo := interruptOn(ctx, p.sc)
	err := send(p.sc, simpleQueryFrame(nil, sql))
	undo()
	return p.lost(ctx, err)
}

func (p participant) Receive(ctx context.Context) (string, error) {
	undo := interruptOn(ctx, p.sc)
	var ans shardAnswer
	err := readAnswer(p.sc, &ans)
	undo()
	if err != nil {
		return "", p.lost(ctx, err)
	}
	if ans.err != nil { // a *pgerror.Error: a nil one must not become a non-nil error
		return ans.tag, ans.err
	}
	return ans.tag, nil
}

// lost marks the connection unusable after an I/O failure: an answer may
// still be on its way, and no one may read it as their own. The error
// names ctx's end when that is what cut the exchange short.
func (p participant) lost(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	p.sc.interrupted = true
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("shard %s did not answer in time: %w (%w)", p.id, cerr, err)
	}
	return err
}

// interruptOn makes ctx's end interrupt a read or write blocked on sc, by
// moving its deadline to now. The returned undo must be called when the
// I/O is over: if ctx ended meanwhile it waits for the deadline to be set
// and clears it, so a completed exchange leaves the connection as it was.
func interruptOn(ctx context.Context, sc *serverConn) (undo func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	if ctx.Err() != nil {
		_ = sc.SetDeadline(time.Now())
		return func() { _ = sc.SetDeadline(time.Time{}) }
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = sc.SetDeadline(time.Now())
		close(fired)
	})
	return func() {
		if !stop() {
			<-fired
			_ = sc.SetDeadline(time.Time{})
		}
	}
}

// commitShards commits the proxy's own transaction on several shards.
func (s *session) commitShards(ctx context.Context, conns []*serverConn, stmts []*shardStatement) error {
	ids := make([]string, len(stmts))
	for i, st := range stmts {
		ids[i] = st.shard
	}
	err := s.twoPhaseCommit(ctx, conns, ids)
	if err == nil {
		for i, sc := range conns {
			s.fetchCommitLSN(sc, ids[i])
		}
	}
	s.releaseServer()
	return err
}

// twoPhaseCommit commits the open transactions on conns with PREPARE
// TRANSACTION, a durable decision and COMMIT PREPARED.
func (s *session) twoPhaseCommit(ctx context.Context, conns []*serverConn, ids []string) error {
	co := s.r.cfg.Coordinator
	if co == nil {
		for _, sc := range conns {
			_ = execSimple(sc, "ROLLBACK")
		}
		return pgerror.New(pgerror.FeatureNotSupported, "a write on several shards needs two-phase commit, which this node was started without").
			WithHint("give the node a data_dir for its commit decisions")
	}
	ps := make([]twopc.Participant, len(conns))
	for i, sc := range conns {
		ps[i] = participant{id: ids[i], sc: sc}
	}
	return co.Commit(ctx, co.NewGID(), ps)
}
