package drivers_test

// The package's shared cluster, the pool modes every driver runs in, and
// the helpers that run a driver's script and check what it printed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// cluster is one shard without replicas, shared by every test here.
var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	testenv.Main(m, 1, 0, &cluster)
}

// target is where a driver's script connects: a proxy node in one pool
// mode, or PostgreSQL itself, whose answers every pool mode is held to
// (only where a mode refuses a construct on purpose do they differ).
type target struct {
	name string // the pool mode, or "direct"; also the scripts' table suffix
	size int    // the proxy's pool size; 0 for direct
}

// targets: in transaction pooling two server connections serve every
// client the scripts open (up to six at once); in session pooling each
// client has one of its own for as long as it is connected.
var targets = []target{
	{config.PoolTransaction, 2},
	{config.PoolSession, 8},
	{"direct", 0},
}

// url starts a proxy node for tg, unless it is direct, and returns the app
// user's URL for it.
func (tg target) url(t *testing.T) string {
	t.Helper()
	if tg.size == 0 {
		return testenv.DirectURL(cluster, cluster.Shards[0].Primary, testenv.AppUser, testenv.AppPassword)
	}
	cfg := testenv.Config(cluster)
	cfg.DataDir = t.TempDir()
	cfg.Pool.Mode = tg.name
	cfg.Pool.Size = tg.size
	return testenv.URL(testenv.StartNode(t, cfg, node.Options{}), testenv.AppUser, testenv.AppPassword)
}

// sessionOnly is what a construct that needs a server session of its own
// gives: PostgreSQL's answer, except in transaction pooling, which refuses
// it with 0A000.
func (tg target) sessionOnly(postgres any) any {
	if tg.name == config.PoolTransaction {
		return "0A000"
	}
	return postgres
}

// checkServerConns fails the test if most, the most server connections
// seen while a script ran, exceeds tg's pool size.
func (tg target) checkServerConns(t *testing.T, most int) {
	t.Helper()
	if tg.size > 0 && most > tg.size {
		t.Errorf("the proxy had %d server connections, pool size %d", most, tg.size)
	}
}

// scriptTimeout bounds one run of a driver's script.
const scriptTimeout = 60 * time.Second

// superURL is the superuser's URL straight to the shard's primary; the
// tests check the database with it, so that the app user's backends are
// the proxy's alone.
func superURL() string { return cluster.SuperConnString(cluster.Shards[0].Primary, testenv.Database) }

// prepare drops the tables a script creates and waits until the app user
// has no backend left from an earlier test's proxy. It returns the
// superuser connection the test checks with.
func prepare(t *testing.T, ctx context.Context, tables ...string) *pgx.Conn {
	t.Helper()
	super := testenv.Connect(t, ctx, superURL())
	// A transaction a failed run left prepared would hold its table.
	rows, err := super.Query(ctx, "select gid from pg_prepared_xacts where gid like 'drivers-%'")
	if err != nil {
		t.Fatal(err)
	}
	gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, gid := range gids {
		if _, err := super.Exec(ctx, "rollback prepared '"+gid+"'"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := super.Exec(ctx, "drop table if exists "+strings.Join(tables, ", ")+" cascade"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, ctx, "no backends of the app user", func() (bool, error) {
		n, err := serverConns(ctx, super)
		return n == 0, err
	})
	return super
}

// serverConns counts the app user's backends: the proxy's server
// connections.
func serverConns(ctx context.Context, super *pgx.Conn) (int, error) {
	var n int
	err := super.QueryRow(ctx, `select count(*) from pg_stat_activity
		where usename = 'app' and backend_type = 'client backend'`).Scan(&n)
	return n, err
}

// watchServerConns samples serverConns on a connection of its own (pgx
// closes a connection whose query's context ends) until the returned
// function is called, which returns the most it saw.
func watchServerConns(t *testing.T, ctx context.Context) (most func() int) {
	t.Helper()
	super := testenv.Connect(t, ctx, superURL())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		m := 0
		for ctx.Err() == nil {
			if n, err := serverConns(ctx, super); err == nil {
				m = max(m, n)
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		done <- m
	}()
	return func() int { cancel(); return <-done }
}

// listen opens a superuser connection straight to the primary that
// listens on channel, for notifications the scripts send through the
// proxy.
func listen(t *testing.T, ctx context.Context, channel string) *pgx.Conn {
	t.Helper()
	c := testenv.Connect(t, ctx, superURL())
	if _, err := c.Exec(ctx, "listen "+channel); err != nil {
		t.Fatal(err)
	}
	return c
}

// expectNotifications waits for payloads, in any order, on a connection
// of listen.
func expectNotifications(t *testing.T, ctx context.Context, c *pgx.Conn, channel string, payloads ...string) {
	t.Helper()
	var got []string
	for len(got) < len(payloads) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := c.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for notifications on %s: got %q, want %q: %v", channel, got, payloads, err)
		}
		if n.Channel == channel {
			got = append(got, n.Payload)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(payloads))
	if !slices.Equal(got, want) {
		t.Errorf("notifications on %s: %q, want %q", channel, got, want)
	}
}

// runScript runs a driver's script and returns the JSON object it printed
// on its last line of output, failing the test with its output when it
// fails.
func runScript(t *testing.T, ctx context.Context, dir, name string, args ...string) map[string]json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s: %v (timeout %s)\nstderr:\n%s\nstdout:\n%s", name, strings.Join(args, " "), err, scriptTimeout, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var summary map[string]json.RawMessage
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil {
		t.Fatalf("%s printed no JSON summary on its last line: %v\nstdout:\n%s\nstderr:\n%s", name, err, stdout.String(), stderr.String())
	}
	return summary
}

// checkSummary compares the keys of want with a script's summary, as JSON
// values: an int in want matches a JSON number, a []string an array.
func checkSummary(t *testing.T, summary map[string]json.RawMessage, want map[string]any) {
	t.Helper()
	for _, key := range slices.Sorted(maps.Keys(want)) {
		raw, ok := summary[key]
		if !ok {
			t.Errorf("summary has no %q", key)
			continue
		}
		var got, exp any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Errorf("summary %q: %v", key, err)
			continue
		}
		wantJSON, err := json.Marshal(want[key])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(wantJSON, &exp); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s = %s, want %s", key, raw, wantJSON)
		}
	}
	if t.Failed() {
		all, _ := json.Marshal(summary)
		t.Logf("the whole summary: %s", all)
	}
}

// version is a string the summary reports, for the log.
func version(summary map[string]json.RawMessage, key string) string {
	var s any
	_ = json.Unmarshal(summary[key], &s)
	return fmt.Sprint(s)
}

// queryInts runs a query of one row of integers on a direct connection.
func queryInts(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) []int64 {
	t.Helper()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	vals, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) ([]int64, error) {
		out := make([]int64, len(r.FieldDescriptions()))
		ptrs := make([]any, len(out))
		for i := range out {
			ptrs[i] = &out[i]
		}
		return out, r.Scan(ptrs...)
	})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return vals
}
