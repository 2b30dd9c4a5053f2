package router

import (
	"context"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// Placeholders while the merge and two-phase-commit packages land.

type mergedRows struct {
	fields []pgproto3.FieldDescription
	rows   [][][]byte
}

func mergeRows(root planner.Primitive, answers []shardAnswer, params *boundParams) (*mergedRows, error) {
	return nil, pgerror.New(pgerror.FeatureNotSupported, "multi-shard merges are not built yet")
}

func (s *session) commitShards(ctx context.Context, conns []*serverConn, stmts []*shardStatement) error {
	for _, sc := range conns {
		_ = execSimple(sc, "ROLLBACK")
	}
	s.releaseServer()
	return pgerror.New(pgerror.FeatureNotSupported, "multi-shard writes are not built yet")
}

func (s *session) twoPhaseCommit(ctx context.Context, conns []*serverConn, ids []string) error {
	for _, sc := range conns {
		_ = execSimple(sc, "ROLLBACK")
	}
	return pgerror.New(pgerror.FeatureNotSupported, "multi-shard commits are not built yet")
}

func (s *session) buildPlan(ctx context.Context, sql string) (*planner.Plan, []planner.Literal, error) {
	return &planner.Plan{Root: &planner.Route{Target: planner.TargetFirst}}, nil, nil
}
