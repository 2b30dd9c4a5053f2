// One PostgreSQL shard serves every test of the package; this file starts it
// and gives the trust user the right to create the tables the cases use.
package protocol_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/test/testenv"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithCluster(m, 1, 0, func(c *localpg.Cluster) error {
		cluster = c
		return grantCreate()
	}))
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
