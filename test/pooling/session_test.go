package pooling_test

// Session pooling with ONE server connection: a second client waits for it
// at most pool.wait_timeout and is then refused with 57P03 naming the
// limit; once the first client leaves, nothing of its session (settings,
// prepared statements, temporary tables, advisory locks, LISTEN) reaches the
// next one.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
)

func TestSessionPoolWaitAndReset(t *testing.T) {
	const wait = 500 * time.Millisecond
	n := startNode(t, func(c *config.Config) {
		c.Pool.Mode = config.PoolSession
		c.Pool.Size = 1
		c.Pool.WaitTimeout = wait
	}, node.Options{})
	ctx := testenv.TestCtx(t, 30*time.Second)
	super := testenv.Connect(t, ctx, superURL())

	a := testenv.Connect(t, ctx, proxyURL(n))
	var pidA int
	if err := a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidA); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"set work_mem = '13MB'",
		"set application_name = 'leaky'",
		"set search_path = leak, public",
		"prepare leak_stmt as select 42",
		"create temp table leak_tmp (x int)",
		"select pg_advisory_lock(777)",
		"listen leak_channel",
	} {
		mustExec(t, ctx, a, sql)
	}
	if _, err := a.Prepare(ctx, "leak_proto", "select 43"); err != nil {
		t.Fatal(err)
	}

	// B waits for the only server connection, then gives up.
	cfg, err := pgx.ParseConfig(proxyURL(n))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnectTimeout = 10 * time.Second
	began := time.Now()
	b, err := pgx.ConnectConfig(ctx, cfg)
	waited := time.Since(began)
	if err == nil {
		_ = b.Close(ctx)
		t.Fatal("a second client got a server connection from a pool of one in session mode")
	}
	pe := testenv.RequireCode(t, err, "57P03")
	if !strings.Contains(pe.Message, "pool.wait_timeout") {
		t.Errorf("message %q does not name pool.wait_timeout", pe.Message)
	}
	if waited < wait {
		t.Errorf("refused after %s, before pool.wait_timeout (%s)", waited, wait)
	}
	// A was not disturbed.
	var x int
	if err := a.QueryRow(ctx, "execute leak_stmt").Scan(&x); err != nil || x != 42 {
		t.Fatalf("A after B's refusal: %d, %v", x, err)
	}

	// A leaves; C gets the same server connection, clean.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := testenv.Connect(t, ctx, proxyURL(n))
	var pidC int
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pidC); err != nil {
		t.Fatal(err)
	}
	if pidC != pidA {
		t.Logf("C got a different server connection (%d, A had %d); the checks still apply", pidC, pidA)
	}
	checks := []struct {
		sql, want string
	}{
		{"show work_mem", "4MB"},
		{"show application_name", ""},
		{"select current_setting('search_path')", `"$user", public`},
		{"select count(*)::text from pg_prepared_statements where name in ('leak_stmt', 'leak_proto')", "0"},
		{"select (to_regclass('pg_temp.leak_tmp') is null)::text", "true"},
		{"select count(*)::text from pg_locks where locktype = 'advisory' and objid = 777 and pid = pg_backend_pid()", "0"},
		{"select count(*)::text from pg_listening_channels()", "0"},
	}
	for _, ck := range checks {
		if got := scalar(t, ctx, c, ck.sql); got != ck.want {
			t.Errorf("%s: got %q, want %q (left over from the previous session)", ck.sql, got, ck.want)
		}
	}
	// The advisory lock is free for anyone.
	var ok bool
	if err := super.QueryRow(ctx, "select pg_try_advisory_lock(777)").Scan(&ok); err != nil || !ok {
		t.Errorf("advisory lock 777 still held after its session ended: %v, %v", ok, err)
	}
	mustExec(t, ctx, super, "select pg_advisory_unlock(777)")
}
