package health_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shardproxy/shardproxy/localpg"
)

func q(t *testing.T, c *pgconn.PgConn, sql string) string {
	rs, err := c.Exec(context.Background(), sql).ReadAll()
	if err != nil {
		return "ERR " + err.Error()
	}
	out := ""
	for _, r := range rs {
		for _, row := range r.Rows {
			for _, v := range row {
				if v == nil {
					out += "NULL|"
				} else {
					out += string(v) + "|"
				}
			}
		}
	}
	return out
}

func TestExplore(t *testing.T) {
	c := localpg.StartForTest(t, localpg.Config{Replicas: 1, TemplateDir: "/tmp/shardpg-template-15", Roles: []localpg.Role{{Name: "app", Password: "app"}}})
	ctx := context.Background()
	p, err := pgconn.Connect(ctx, c.ConnString(c.Shards[0].Primary, "app", "app", "postgres"))
	if err != nil { t.Fatal(err) }
	r, err := pgconn.Connect(ctx, c.ConnString(c.Shards[0].Replicas[0], "app", "app", "postgres"))
	if err != nil { t.Fatal(err) }
	const sql = `SELECT r, CASE WHEN r THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END::text, CASE WHEN r THEN (SELECT timeline_id FROM pg_control_checkpoint())::bigint ELSE ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::bigint END FROM (SELECT pg_is_in_recovery() AS r OFFSET 0) AS s`
	fmt.Println("P", q(t, p, sql))
	fmt.Println("R", q(t, r, sql))
	fmt.Println("R recv", q(t, r, "select received_tli, status from pg_stat_wal_receiver"))
	fmt.Println("P explain", q(t, p, "explain analyze "+sql))
	fmt.Println("P explain", q(t, p, "explain verbose "+sql))
	fmt.Println("R explain", q(t, r, "explain analyze "+sql))
}
