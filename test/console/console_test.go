package console_test

// The admin console through a real node: the node must route the startup
// database "shardproxy" to console.Serve (node wiring), after which every
// SHOW answers from the node's live state: the configured shards and
// replicas, the map's ranges and tables, the router's pools, the nodes and
// the version. Other databases still reach the shards, also for admins.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/console"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// cluster is two shards with a replica each, shared by every test here.
var cluster *localpg.Cluster

func TestMain(m *testing.M) { testenv.Main(m, 2, 1, &cluster) }

// startNode starts a node in front of the cluster with one sharded and one
// reference table configured, so SHOW TABLES has rows.
func startNode(t *testing.T) *node.Node {
	t.Helper()
	cfg := testenv.Config(cluster)
	cfg.DataDir = t.TempDir()
	cfg.Tables = []config.Table{
		{Schema: "public", Name: "console_orders", Key: "customer_id"},
		{Schema: "public", Name: "console_countries", Reference: true},
	}
	return testenv.StartNode(t, cfg, node.Options{})
}

// consoleURL is user's URL to the console of n.
func consoleURL(n *node.Node, user, password string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, password, n.Addr(), console.Database)
}

// rows runs q and renders each row as "a|b|c" (NULL for null).
func rows(t *testing.T, ctx context.Context, conn *pgx.Conn, q string) []string {
	t.Helper()
	rs, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		vals, err := rs.Values()
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = "NULL"
			if v != nil {
				cells[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// wantShards is SHOW SHARDS for the cluster: each primary, then its
// replicas, in shard order.
func wantShards() []string {
	var want []string
	for _, sh := range cluster.Shards {
		want = append(want, row(sh.ID, "primary", sh.Primary.Addr()))
		for _, r := range sh.Replicas {
			want = append(want, row(sh.ID, "replica", r.Addr()))
		}
	}
	return want
}

func row(id, role, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return strings.Join([]string{id, role, host, port}, "|")
}

func TestPgx(t *testing.T) {
	n := startNode(t)
	ctx := testenv.TestCtx(t, 60*time.Second)
	// An application session first, so the node has a pool to show.
	app := testenv.Connect(t, ctx, testenv.URL(n, testenv.AppUser, testenv.AppPassword))
	if _, err := app.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("app query: %v", err)
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := pgx.ParseConfig(consoleURL(n, testenv.AdminUser, testenv.AdminPasswd))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			conn := testenv.ConnectConfig(t, ctx, cfg)

			if got, want := rows(t, ctx, conn, "SHOW SHARDS"), wantShards(); !slices.Equal(got, want) {
				t.Errorf("SHOW SHARDS:\n got %q\nwant %q", got, want)
			}
			ranges := rows(t, ctx, conn, "show ranges;")
			if len(ranges) != len(cluster.Shards) || !strings.HasPrefix(ranges[0], "-9223372036854775808|") ||
				!strings.HasSuffix(ranges[len(ranges)-1], "||"+cluster.Shards[len(cluster.Shards)-1].ID) {
				t.Errorf("SHOW RANGES: %q", ranges)
			}
			wantTables := []string{"public|console_orders|sharded|customer_id", "public|console_countries|reference|"}
			if got := rows(t, ctx, conn, "SHOW TABLES"); !slices.Equal(got, wantTables) {
				t.Errorf("SHOW TABLES:\n got %q\nwant %q", got, wantTables)
			}
			pools := rows(t, ctx, conn, "SHOW POOLS")
			if !slices.ContainsFunc(pools, func(r string) bool {
				return strings.HasPrefix(r, testenv.Database+"|"+testenv.AppUser+"|"+cluster.Shards[0].ID+"|"+cluster.Shards[0].Primary.Addr()+"|")
			}) {
				t.Errorf("SHOW POOLS has no pool for the app session: %q", pools)
			}
			var wantReplicas []string
			for _, sh := range cluster.Shards {
				for _, r := range sh.Replicas {
					host, port, _ := net.SplitHostPort(r.Addr())
					wantReplicas = append(wantReplicas, strings.Join([]string{sh.ID, host, port}, "|")+"|")
				}
			}
			replicas := rows(t, ctx, conn, "SHOW REPLICAS")
			if len(replicas) != len(wantReplicas) {
				t.Errorf("SHOW REPLICAS: %q, want one row per replica %q", replicas, wantReplicas)
			}
			for i := range min(len(replicas), len(wantReplicas)) {
				if !strings.HasPrefix(replicas[i], wantReplicas[i]) {
					t.Errorf("SHOW REPLICAS row %d: %q, want %q<state>", i, replicas[i], wantReplicas[i])
				}
			}
			if nodes := rows(t, ctx, conn, "SHOW NODES"); len(nodes) == 0 {
				t.Error("SHOW NODES lists no node, not even this one")
			}
			if v := rows(t, ctx, conn, "SHOW VERSION"); len(v) != 1 || !strings.HasPrefix(v[0], "shardproxy ") {
				t.Errorf("SHOW VERSION: %q", v)
			}
			if help := rows(t, ctx, conn, "SHOW HELP"); len(help) < 7 {
				t.Errorf("SHOW HELP: %q", help)
			}

			_, err = conn.Exec(ctx, "SELECT 1")
			testenv.RequireCode(t, err, "0A000")
			_, err = conn.Exec(ctx, "SHOW NOPE")
			testenv.RequireCode(t, err, "42601")
			if v := rows(t, ctx, conn, "SHOW VERSION"); len(v) != 1 {
				t.Errorf("after errors, SHOW VERSION: %q", v)
			}
		})
	}
}

// TestMultiStatement: one simple query, one result per statement.
func TestMultiStatement(t *testing.T) {
	n := startNode(t)
	ctx := testenv.TestCtx(t, 30*time.Second)
	conn := testenv.Connect(t, ctx, consoleURL(n, testenv.AdminUser, testenv.AdminPasswd))
	results, err := conn.PgConn().Exec(ctx, "SHOW VERSION; SHOW SHARDS; SHOW REPLICAS").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || len(results[1].Rows) != len(wantShards()) {
		t.Errorf("got %d results (%d shard rows), want 3 (%d)", len(results), len(results[1].Rows), len(wantShards()))
	}
}

func TestNotAdminRefused(t *testing.T) {
	n := startNode(t)
	ctx := testenv.TestCtx(t, 30*time.Second)
	cfg, err := pgx.ParseConfig(consoleURL(n, testenv.AppUser, testenv.AppPassword))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		_ = conn.Close(ctx)
		t.Fatal("the app user reached the admin console")
	}
	if code := testenv.PGCode(err); code != "28000" && code != "42501" {
		t.Fatalf("want SQLSTATE 28000 or 42501, got %q: %v", code, err)
	}
}

// TestAdminOnOtherDatabases: the console takes only database "shardproxy";
// an admin user's session to the application database reaches the shards.
func TestAdminOnOtherDatabases(t *testing.T) {
	n := startNode(t)
	ctx := testenv.TestCtx(t, 30*time.Second)
	conn := testenv.Connect(t, ctx, testenv.URL(n, testenv.AdminUser, testenv.AdminPasswd))
	var db string
	if err := conn.QueryRow(ctx, "select current_database()").Scan(&db); err != nil || db != testenv.Database {
		t.Fatalf("current_database() = %q, %v", db, err)
	}
}

func TestPsql(t *testing.T) {
	n := startNode(t)
	url := consoleURL(n, testenv.AdminUser, testenv.AdminPasswd)
	out, stderr, err := psql(t, url, "-c", "SHOW SHARDS")
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, stderr)
	}
	if want := strings.Join(wantShards(), "\n") + "\n"; out != want {
		t.Errorf("psql SHOW SHARDS printed\n%s\nwant\n%s", out, want)
	}
	for _, q := range []string{"SHOW RANGES", "SHOW TABLES", "SHOW POOLS", "SHOW REPLICAS", "SHOW NODES", "SHOW VERSION", "SHOW HELP",
		"show version; show shards"} {
		// A fresh node may have no pools yet: SHOW POOLS may print nothing.
		if out, stderr, err := psql(t, url, "-c", q); err != nil || out == "" && q != "SHOW POOLS" {
			t.Errorf("psql -c %q: %v\nstdout: %s\nstderr: %s", q, err, out, stderr)
		}
	}
	if _, stderr, err := psql(t, url, "-c", "SHOW NOPE"); err == nil || !strings.Contains(stderr, "unrecognized console command") {
		t.Errorf("psql -c 'SHOW NOPE': %v\n%s", err, stderr)
	}
	_, stderr, err = psql(t, consoleURL(n, testenv.AppUser, testenv.AppPassword), "-c", "SHOW SHARDS")
	if err == nil {
		t.Errorf("psql as the app user reached the console")
	} else if !strings.Contains(stderr, "permission denied") && !strings.Contains(stderr, "28000") {
		t.Logf("psql as the app user was refused: %s", stderr)
	}
}

// psql runs psql with unaligned, tuples-only output, so rows compare as
// "a|b|c" lines.
func psql(t *testing.T, url string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", append([]string{"-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url}, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PAGER=", "PSQL_PAGER=", "LC_ALL=C.UTF-8")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return out.String(), errOut.String(), err
}
