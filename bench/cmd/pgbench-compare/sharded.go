package main

// This file fills shardproxy-2shard: `pgbench -i` runs through the proxy,
// which splits the rows over the two servers by key, and the rows are then
// counted on each server directly, so the benchmark never measures a
// half-loaded or misrouted data set.

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/localpg"
)

// shardRows is what one shard of shardproxy-2shard holds after loading.
type shardRows struct {
	Shard    string `json:"shard"`
	Server   string `json:"server"`
	Accounts int64  `json:"accounts"`
	Branches int64  `json:"branches"`
	Tellers  int64  `json:"tellers"`
	History  int64  `json:"history"`
	// Prepared counts transactions left prepared (two-phase) on the server.
	Prepared int64 `json:"prepared_xacts"`
}

// loadSharded runs `pgbench -i -s scale` through the proxy listening on
// port, checks that the rows on the servers add up to pgbench's, and
// checkpoints every server.
func loadSharded(ctx context.Context, c *localpg.Cluster, servers []*localpg.Server, pb pgbench, port, scale int) ([]shardRows, error) {
	fmt.Fprintf(os.Stderr, "pgbench -i -s %d (through %s)...\n", scale, targetShardproxy2)
	if err := pb.initialize(ctx, port, scale); err != nil {
		return nil, err
	}
	var rows []shardRows
	for i, s := range servers {
		r := shardRows{Shard: fmt.Sprintf("s%d", i+1), Server: s.Name()}
		err := func() error {
			conn, err := pgx.Connect(ctx, c.SuperConnString(s, benchDB))
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_branches),
				(SELECT count(*) FROM pgbench_tellers), (SELECT count(*) FROM pgbench_history), (SELECT count(*) FROM pg_prepared_xacts)`).
				Scan(&r.Accounts, &r.Branches, &r.Tellers, &r.History, &r.Prepared); err != nil {
				return err
			}
			_, err = conn.Exec(ctx, "CHECKPOINT")
			return err
		}()
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", s.Name(), err)
		}
		rows = append(rows, r)
	}
	return rows, checkSplit(rows, scale)
}

// checkSplit reports how the shards' rows differ from what `pgbench -i -s
// scale` makes: 100,000 accounts, 1 branch and 10 tellers per unit of
// scale, no history; every shard must hold some accounts (a proxy that sent
// everything to one shard is not a two-shard benchmark) and no prepared
// transaction may be left behind.
func checkSplit(rows []shardRows, scale int) error {
	var total shardRows
	var errs []error
	for _, r := range rows {
		total.Accounts += r.Accounts
		total.Branches += r.Branches
		total.Tellers += r.Tellers
		total.History += r.History
		if r.Accounts == 0 {
			errs = append(errs, fmt.Errorf("shard %s holds no accounts", r.Shard))
		}
		if r.Prepared != 0 {
			errs = append(errs, fmt.Errorf("shard %s has %d prepared transactions left", r.Shard, r.Prepared))
		}
	}
	s := int64(scale)
	for _, c := range []struct {
		table     string
		got, want int64
	}{
		{"pgbench_accounts", total.Accounts, 100000 * s},
		{"pgbench_branches", total.Branches, s},
		{"pgbench_tellers", total.Tellers, 10 * s},
		{"pgbench_history", total.History, 0},
	} {
		if c.got != c.want {
			errs = append(errs, fmt.Errorf("the shards hold %d rows of %s, pgbench -i -s %d makes %d", c.got, c.table, scale, c.want))
		}
	}
	return errors.Join(errs...)
}

// multiShardShare is the expected share of TPC-B transactions that write
// on more than one shard: pgbench's tpcb-like script picks an account, a
// teller and a branch independently and uniformly, and the history row
// goes with the account, so a transaction stays on one shard only when all
// three of its rows are on the same one.
func multiShardShare(rows []shardRows) float64 {
	var a, t, b float64
	for _, r := range rows {
		a += float64(r.Accounts)
		t += float64(r.Tellers)
		b += float64(r.Branches)
	}
	if a == 0 || t == 0 || b == 0 {
		return 0
	}
	single := 0.0
	for _, r := range rows {
		single += float64(r.Accounts) / a * float64(r.Tellers) / t * float64(r.Branches) / b
	}
	return 1 - single
}
