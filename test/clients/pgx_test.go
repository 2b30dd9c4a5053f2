package clients_test

// pgx in each of its query execution modes, through transaction pooling
// with fewer server connections (2) than clients (8), so every client's
// statements keep landing on server connections other clients used.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
)

func TestPgxQueryModes(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		c.Pool.Mode = config.PoolTransaction
		c.Pool.Size = 2
	})
	ctx := testenv.TestCtx(t, 60*time.Second)
	direct := testenv.Connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, `drop table if exists pgx_modes;
		create table pgx_modes (mode text, g int, i int, name text, note text, at timestamptz,
			primary key (mode, g, i))`); err != nil {
		t.Fatal(err)
	}

	modes := []pgx.QueryExecMode{
		pgx.QueryExecModeCacheStatement, // pgx's default
		pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec,
		pgx.QueryExecModeExec,
		pgx.QueryExecModeSimpleProtocol,
	}
	const clients, rounds = 8, 15
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for g := range clients {
				cfg, err := pgx.ParseConfig(proxyURL(n))
				if err != nil {
					t.Fatal(err)
				}
				cfg.DefaultQueryExecMode = mode
				conn := testenv.ConnectConfig(t, ctx, cfg)
				wg.Go(func() {
					for i := range rounds {
						if err := pgxRound(ctx, conn, mode.String(), g, i); err != nil {
							errs <- fmt.Errorf("client %d round %d: %w", g, i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// Everything committed is there, nothing rolled back is.
			var rows, rolledBack int
			if err := direct.QueryRow(ctx, `select count(*), count(*) filter (where name = 'rolled back')
				from pgx_modes where mode = $1`, mode.String()).Scan(&rows, &rolledBack); err != nil {
				t.Fatal(err)
			}
			// Per round: one Exec insert, one batch insert, one committed insert.
			if want := clients * rounds * 3; rows != want || rolledBack != 0 {
				t.Errorf("table has %d rows (%d rolled back), want %d (0)", rows, rolledBack, want)
			}
		})
	}
}

// pgxRound runs one of everything and checks every answer. Row ids: i*10+k
// for the k-th insert of round i.
func pgxRound(ctx context.Context, conn *pgx.Conn, mode string, g, i int) error {
	at := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC).Add(time.Duration(g*1000+i) * time.Second)
	name := fmt.Sprintf("client %d: 'quoted' ünïcode round %d", g, i)

	// QueryRow with ints, text, NULL and a timestamp.
	var sum int64
	var text string
	var null *string
	var gotAt time.Time
	err := conn.QueryRow(ctx, "select $1::int8 + $2::int4, $3::text || '!', $4::text, $5::timestamptz",
		int64(g)<<33, int32(i), name, nil, at).Scan(&sum, &text, &null, &gotAt)
	if err != nil {
		return fmt.Errorf("QueryRow: %w", err)
	}
	if sum != int64(g)<<33+int64(i) || text != name+"!" || null != nil || !gotAt.Equal(at) {
		return fmt.Errorf("QueryRow got (%d, %q, %v, %v)", sum, text, null, gotAt)
	}

	// Exec.
	tag, err := conn.Exec(ctx, "insert into pgx_modes values ($1, $2, $3, $4, $5, $6)", mode, g, i*10, name, nil, at)
	if err != nil {
		return fmt.Errorf("Exec: %w", err)
	}
	if tag.RowsAffected() != 1 || !tag.Insert() {
		return fmt.Errorf("Exec tag %q", tag)
	}

	// Query with several rows.
	rows, err := conn.Query(ctx, "select g, n, $2::text from generate_series(1, $1::int) n, (select $3::int g) x order by n", 5, "x", g)
	if err != nil {
		return fmt.Errorf("Query: %w", err)
	}
	type row struct {
		G, N int
		S    string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return fmt.Errorf("Query rows: %w", err)
	}
	if len(got) != 5 || got[0] != (row{g, 1, "x"}) || got[4] != (row{g, 5, "x"}) {
		return fmt.Errorf("Query got %v", got)
	}

	// A failing statement, then the connection still works.
	_, err = conn.Exec(ctx, "select 1 / $1::int", 0)
	if testenv.PGCode(err) != "22012" {
		return fmt.Errorf("division by zero: want 22012, got %v", err)
	}

	// A batch: insert, read back, parameters of several types.
	b := &pgx.Batch{}
	b.Queue("insert into pgx_modes values ($1, $2, $3, $4, $5, $6)", mode, g, i*10+1, name, "batch", at)
	b.Queue("select note, at from pgx_modes where mode = $1 and g = $2 and i = $3", mode, g, i*10+1)
	b.Queue("select $1::int4, $2::text, $3::bool", int32(i), nil, true)
	br := conn.SendBatch(ctx, b)
	if tag, err := br.Exec(); err != nil || tag.RowsAffected() != 1 {
		br.Close()
		return fmt.Errorf("batch insert: %q, %w", tag, err)
	}
	var note string
	if err := br.QueryRow().Scan(&note, &gotAt); err != nil || note != "batch" || !gotAt.Equal(at) {
		br.Close()
		return fmt.Errorf("batch select: %q %v %w", note, gotAt, err)
	}
	var n int32
	var s *string
	var ok bool
	if err := br.QueryRow().Scan(&n, &s, &ok); err != nil || n != int32(i) || s != nil || !ok {
		br.Close()
		return fmt.Errorf("batch params: %d %v %v %w", n, s, ok, err)
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("batch close: %w", err)
	}

	// A batch that fails half way: the statements after the error do not
	// run, and the connection goes on.
	b = &pgx.Batch{}
	b.Queue("select $1::int", 1)
	b.Queue("select 1 / $1::int", 0)
	b.Queue("insert into pgx_modes values ($1, $2, $3, 'after error', null, null)", mode, g, i*10+4)
	br = conn.SendBatch(ctx, b)
	var one int
	if err := br.QueryRow().Scan(&one); err != nil || one != 1 {
		br.Close()
		return fmt.Errorf("failing batch, first statement: %d %w", one, err)
	}
	if _, err := br.Exec(); testenv.PGCode(err) != "22012" {
		br.Close()
		return fmt.Errorf("failing batch, second statement: want 22012, got %v", err)
	}
	if _, err := br.Exec(); err == nil {
		br.Close()
		return errors.New("failing batch: the statement after the error ran")
	}
	if err := br.Close(); testenv.PGCode(err) != "22012" && err != nil {
		return fmt.Errorf("failing batch close: %w", err)
	}

	// A committed transaction: its insert is visible inside and after.
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if _, err := tx.Exec(ctx, "insert into pgx_modes values ($1, $2, $3, $4, $5, $6)", mode, g, i*10+2, name, "tx", at); err != nil {
		_ = tx.Rollback(ctx)
		return fmt.Errorf("tx insert: %w", err)
	}
	var cnt int
	if err := tx.QueryRow(ctx, "select count(*) from pgx_modes where mode = $1 and g = $2 and i = $3", mode, g, i*10+2).Scan(&cnt); err != nil || cnt != 1 {
		_ = tx.Rollback(ctx)
		return fmt.Errorf("tx read own insert: %d %w", cnt, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}

	// A rolled-back transaction: its insert is gone.
	tx, err = conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if _, err := tx.Exec(ctx, "insert into pgx_modes values ($1, $2, $3, 'rolled back', null, $4)", mode, g, i*10+3, at); err != nil {
		_ = tx.Rollback(ctx)
		return fmt.Errorf("tx insert: %w", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	if err := conn.QueryRow(ctx, "select count(*) from pgx_modes where mode = $1 and g = $2 and i = $3", mode, g, i*10+3).Scan(&cnt); err != nil || cnt != 0 {
		return fmt.Errorf("rolled-back row: count %d, %w", cnt, err)
	}
	if conn.PgConn().TxStatus() != 'I' {
		return errors.New("connection not idle after the round")
	}
	return nil
}
