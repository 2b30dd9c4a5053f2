package twopc_test

// The package's shared cluster (two shards, no replicas) with a table on
// each; and the entry point of the child process the crash tests kill.

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
	if os.Getenv(crashEnv) != "" {
		os.Exit(crashChild())
	}
	os.Exit(testenv.RunWithCluster(m, 2, 0, func(c *localpg.Cluster) error {
		cluster = c
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, sh := range c.Shards {
			conn, err := pgx.Connect(ctx, testenv.DirectURL(c, sh.Primary, testenv.AppUser, testenv.AppPassword))
			if err != nil {
				return err
			}
			_, err = conn.Exec(ctx, `
				CREATE TABLE t (id int PRIMARY KEY, shard text NOT NULL);
				CREATE TABLE d (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)`)
			conn.Close(ctx)
			if err != nil {
				return fmt.Errorf("shard %s: %w", sh.ID, err)
			}
		}
		return nil
	}))
}
