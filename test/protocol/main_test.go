// One PostgreSQL shard serves every test of the package; this file starts it
// and gives the trust user the right to create the tables the cases use.
package protocol_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/test/testenv"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	c, err := testenv.StartCluster(1, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting PostgreSQL:", err)
		return 1
	}
	defer func() { _ = c.Stop() }()
	cluster = c
	if err := grantCreate(); err != nil {
		fmt.Fprintln(os.Stderr, "preparing the database:", err)
		return 1
	}
	return m.Run()
}

// grantCreate lets the trust user create tables in public (PostgreSQL 15
// no longer grants that to everyone), so cases set up their objects as the
// same user that runs them and every object is owned alike.
func grantCreate() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cluster.SuperConnString(primary(), testenv.Database))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "GRANT CREATE ON SCHEMA public TO "+testenv.TrustUser)
	return err
}

func primary() *localpg.Server { return cluster.Shards[0].Primary }

// directSQL runs setup statements straight on PostgreSQL as the trust user.
func directSQL(tb testing.TB, stmts ...string) {
	tb.Helper()
	if len(stmts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.DirectURL(cluster, primary(), testenv.TrustUser, ""))
	if err != nil {
		tb.Fatalf("setup connection: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("setup %q: %v", s, err)
		}
	}
}
