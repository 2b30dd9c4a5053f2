// Review probes: differential cases written while reviewing the router.
// Cases that fail expose a place where a client sees something different
// from PostgreSQL; a few passing ones are kept for the shapes they cover.
//
//	go test -count=1 ./test/protocol/ -run TestReview -v
package protocol_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/test/testenv"
)

func reviewCases() []protoCase {
	long := "SELECT 'long' AS l /*" + strings.Repeat("x", 70<<10) + "*/"
	return []protoCase{
		// Fixed: The same (new) text parsed twice in one batch, as a
		// pipeline repeating one query does. parse() checks only
		// sc.prepared, which is filled when ParseComplete is read, not
		// the Parses already queued in this batch: the second Parse of
		// the same server name reaches the server and fails with 42P05
		// naming shardproxy_<hash>.
		{name: "rv_same_unnamed_text_twice_in_batch", steps: []step{
			sync1(parse("", "SELECT 'rv_twice' AS t"), bind("", ""), execute("", 0),
				parse("", "SELECT 'rv_twice' AS t"), bind("", ""), execute("", 0)),
			simple("SELECT 1"),
		}},
		// Fixed: Same with two client names for one text.
		{name: "rv_same_named_text_twice_in_batch", steps: []step{
			sync1(parse("rv_a", "SELECT 'rv_named' AS t"), parse("rv_b", "SELECT 'rv_named' AS t"),
				bind("", "rv_b"), execute("", 0)),
			sync1(bind("", "rv_a"), execute("", 0)),
		}},
		// Fixed: DEALLOCATE ALL through the extended protocol in the middle
		// of a batch: its effect on the session's statement table is
		// applied only when its CommandComplete is relayed (at Sync), so
		// the later Parse of a name it freed is refused as a duplicate, and
		// afterwards the statement parsed after it is forgotten too.
		{name: "rv_deallocate_all_mid_batch_then_parse", steps: []step{
			sync1(parse("rv_da", "SELECT 1 AS one")),
			sync1(parse("", "DEALLOCATE ALL"), bind("", ""), execute("", 0),
				parse("rv_da", "SELECT 2 AS two"), bind("", "rv_da"), execute("", 0)),
			sync1(bind("", "rv_da"), execute("", 0)),
		}},
		// Fixed: DEALLOCATE ALL mid-batch, then a new statement parsed in
		// the same batch: the tag handler clears s.stmts and sc.prepared
		// after the fact, dropping the statement PostgreSQL kept.
		{name: "rv_deallocate_all_mid_batch_forgets_later_parse", steps: []step{
			sync1(parse("", "DEALLOCATE ALL"), bind("", ""), execute("", 0), parse("rv_keep", "SELECT 'kept' AS k")),
			sync1(bind("", "rv_keep"), execute("", 0)),
		}},
		// Fixed: DISCARD ALL mid-batch, then the unnamed statement the
		// server had before: parse() answers ParseComplete itself (the
		// server "has" it), but DISCARD ALL just dropped it on the server.
		{name: "rv_discard_all_mid_batch_then_known_text", steps: []step{
			sync1(parse("", "SELECT 'rv_disc' AS d"), bind("", ""), execute("", 0)),
			sync1(parse("", "DISCARD ALL"), bind("", ""), execute("", 0),
				parse("", "SELECT 'rv_disc' AS d"), bind("", ""), execute("", 0)),
		}},
		// Fixed: A Parse without Sync followed by a simple query the proxy
		// answers itself (DEALLOCATE of a missing name): the proxy sends
		// ErrorResponse+ReadyForQuery while the Parse's answer is still
		// queued; the ParseComplete leaks into the next query's answers.
		{name: "rv_parse_then_proxy_answered_query", steps: []step{
			batch(1, parse("", "SELECT 1"), query("DEALLOCATE rv_nope")),
			simple("SELECT 2 AS two"),
		}},
		// Fixed: Same with a DEALLOCATE that succeeds.
		{name: "rv_parse_then_deallocate_ok", steps: []step{
			simple("PREPARE rv_q AS SELECT 1"),
			batch(1, parse("", "SELECT 1"), bind("", ""), execute("", 0), query("DEALLOCATE rv_q")),
			simple("SELECT 2 AS two"),
		}},

		// --- passing probes ---
		// An empty query in the middle of a batch.
		{name: "rv_empty_query_mid_batch", steps: []step{
			sync1(parse("", "SELECT 1"), bind("", ""), execute("", 0), parse("", ""), bind("", ""),
				describePortal(""), execute("", 0), parse("", "SELECT 2"), bind("", ""), execute("", 0)),
		}},
		// A statement longer than pipelineChunk (a drain Flush mid-batch),
		// parsed twice, then an error later in the batch.
		{name: "rv_long_statement", steps: []step{
			sync1(parse("", long), bind("", ""), execute("", 0), parse("", long), bind("", ""), execute("", 0),
				parse("", "SELECT 1/0"), bind("", ""), execute("", 0)),
			sync1(parse("", long), bind("", ""), execute("", 0)),
		}},
		// The fast-path FunctionCall: int4pl(1, 2), then an error.
		{name: "rv_function_call", steps: []step{
			batch(1, &pgproto3.FunctionCall{Function: 177, ArgFormatCodes: []uint16{1},
				Arguments: [][]byte{int4Binary(1), int4Binary(2)}, ResultFormatCode: 1}),
			batch(1, &pgproto3.FunctionCall{Function: 154 /* int4div */, ArgFormatCodes: []uint16{1},
				Arguments: [][]byte{int4Binary(1), int4Binary(0)}, ResultFormatCode: 1}),
			simple("SELECT 1"),
		}},
		// BEGIN/SAVEPOINT via extended protocol, a proxy-made error (missing
		// statement), ROLLBACK TO, COMMIT: the proxy's abort statement must
		// leave the server in the same state PostgreSQL's own error would.
		withTable(protoCase{name: "rv_savepoint_proxy_error", steps: []step{
			sync1(parse("", "BEGIN"), bind("", ""), execute("", 0), parse("", "SAVEPOINT sp"), bind("", ""), execute("", 0)),
			sync1(parse("", "INSERT INTO dp_rv_savepoint_proxy_error VALUES (1, 'a')"), bind("", ""), execute("", 0)),
			simple("SAVEPOINT sp2"),
			sync1(bind("", "rv_missing"), execute("", 0)),
			simple("SELECT 1"),
			sync1(parse("", "ROLLBACK TO sp2"), bind("", ""), execute("", 0)),
			sync1(parse("", "COMMIT"), bind("", ""), execute("", 0)),
			simple("SELECT count(*) FROM dp_rv_savepoint_proxy_error"),
		}}, "dp_rv_savepoint_proxy_error", 0),
		// SET in a failed transaction, SET LOCAL, RESET mid-batch.
		{name: "rv_settings_tx_rules", steps: []step{
			simple("BEGIN"),
			simple("SELECT 1/0"),
			simple("SET work_mem = '9MB'"),
			simple("ROLLBACK"),
			simple("SHOW work_mem"),
			sync1(parse("", "SET work_mem = '3MB'"), bind("", ""), execute("", 0),
				parse("", "RESET work_mem"), bind("", ""), execute("", 0),
				parse("", "SHOW work_mem"), bind("", ""), execute("", 0)),
			simple("BEGIN; SET LOCAL work_mem = '4MB'; SAVEPOINT a; SET work_mem = '5MB'; ROLLBACK TO a; COMMIT"),
			simple("SHOW work_mem"),
		}},
		// Close and Describe of portals inside a transaction, across Syncs.
		{name: "rv_portal_close_describe_in_tx", steps: []step{
			simple("BEGIN"),
			sync1(parse("rv_ps", "SELECT generate_series(1, 3) AS g"), bind("rv_p", "rv_ps"), execute("rv_p", 1)),
			sync1(describePortal("rv_p"), execute("rv_p", 1), closePortal("rv_p"), describePortal("rv_p")),
			sync1(closePortal("rv_p"), closeStmt("rv_ps"), bind("rv_p", "rv_ps")),
			simple("COMMIT"),
		}},
	}
}

// superSQL runs statements as the superuser (schemas need it).
func superSQL(tb testing.TB, stmts ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cluster.SuperConnString(primary(), testenv.Database))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("%q: %v", s, err)
		}
	}
}

// action is one thing a scripted conversation does: a step on client A or
// B (who), or SQL run directly on PostgreSQL by a third connection (sql),
// or closing a client (closeWho).
type action struct {
	who      string
	st       step
	sql      []string
	closeWho string
}

// playScript runs actions against addr with clients dialled with params;
// client B is dialled lazily at its first step. Every read has the raw
// client's deadline.
func playScript(t *testing.T, addr string, params map[string]string, acts []action) []string {
	t.Helper()
	clients := map[string]*rawClient{}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	var out []string
	for i, a := range acts {
		switch {
		case a.sql != nil:
			out = append(out, "-- direct SQL")
			directSQL(t, a.sql...)
		case a.closeWho != "":
			out = append(out, "-- close "+a.closeWho)
			if c := clients[a.closeWho]; c != nil {
				c.close()
				delete(clients, a.closeWho)
			}
			// Let the proxy see the Terminate before the next client asks
			// for the (only) server connection.
			time.Sleep(200 * time.Millisecond)
		default:
			c := clients[a.who]
			if c == nil {
				var err error
				c, _, err = dialRaw(addr, params)
				if err != nil {
					out = append(out, "<connect "+a.who+" failed: "+err.Error()+">")
					continue
				}
				clients[a.who] = c
			}
			out = append(out, "-- "+a.who+" step "+string(rune('0'+i%10))+": "+describeStep(a.st))
			out = append(out, c.run(a.st)...)
		}
	}
	if *showTranscripts {
		t.Logf("transcript:\n%s", strings.Join(out, "\n"))
	}
	return out
}

func runScript(t *testing.T, params map[string]string, reset []string, acts []action, targets []target) {
	directSQL(t, reset...)
	want := playScript(t, directTarget().addr(t), params, acts)
	for _, l := range want {
		if strings.HasPrefix(l, "<") {
			t.Fatalf("the script does not fit PostgreSQL itself:\n%s", strings.Join(want, "\n"))
		}
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			directSQL(t, reset...)
			got := playScript(t, tg.addr(t), params, acts)
			if d := diffLines(want, got); d != "" {
				t.Errorf("answers differ from PostgreSQL's (- direct, + proxy):\n%s", d)
			}
		})
	}
}

func pool1Targets() []target {
	return []target{
		proxyTarget("session-pool-1", func(c *config.Config) {
			c.Pool.Mode = config.PoolSession
			c.Pool.Size = 1
			c.Pool.WaitTimeout = 3 * time.Second
		}),
		proxyTarget("transaction-pool-1", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 1
			c.Pool.WaitTimeout = 3 * time.Second
		}),
	}
}

func TestReview(t *testing.T) {
	for _, pc := range reviewCases() {
		t.Run(pc.name, func(t *testing.T) { runCase(t, pc) })
	}

	// Fixed (was a dirty connection). A client runs an INSERT with
	// Parse/Bind/Execute/Flush (no Sync) and disconnects. PostgreSQL rolls
	// the open implicit transaction back. The proxy's session.end sees an
	// empty queue and txStatus 'I' (the last ReadyForQuery), so
	// resetForPool neither rolls back nor drops the connection: the next
	// client's Query runs inside the dead client's transaction and commits
	// its INSERT.
	t.Run("rv_flush_then_disconnect_leaks_transaction", func(t *testing.T) {
		t.Parallel()
		tbl := "dp_rv_flush_disc"
		setup, reset := table(tbl, 0)
		directSQL(t, setup...)
		runScript(t, nil, reset, []action{
			{who: "A", st: upTo(3, parse("", "INSERT INTO "+tbl+" VALUES (1, 'ghost')"), bind("", ""), execute("", 0), flushMsg)},
			{closeWho: "A"},
			{who: "B", st: simple("SELECT count(*) FROM " + tbl)},
			{who: "B", st: simple("SELECT count(*) FROM " + tbl)},
		}, pool1Targets())
	})

	// Fixed (was a hang / poisoned connection). A client's Parse fails after a
	// Flush (the server now skips everything until Sync) and the client
	// disconnects without Sync. The connection goes back to the pool in
	// that state; the next client's Query is ignored by the server.
	t.Run("rv_flush_error_then_disconnect", func(t *testing.T) {
		t.Parallel()
		runScript(t, nil, nil, []action{
			{who: "A", st: upTo(1, parse("", "SELEKT"), flushMsg)},
			{closeWho: "A"},
			{who: "B", st: simple("SELECT 'b' AS who")},
			{who: "B", st: simple("SELECT 'b2' AS who")},
		}, pool1Targets())
	})

	// Fixed: Statements are shared by text, but PostgreSQL resolves names
	// (and infers parameter types) under the search_path of the Parse.
	// After SET search_path the same unnamed text is a different
	// statement for PostgreSQL (re-parsed); the proxy reuses the server
	// statement whose $1 was inferred int4 against dp_rv_a.t, and the
	// server's revalidation under dp_rv_b fails (text = integer).
	t.Run("rv_search_path_shared_statement", func(t *testing.T) {
		t.Parallel()
		superSQL(t,
			"DROP SCHEMA IF EXISTS dp_rv_a CASCADE", "DROP SCHEMA IF EXISTS dp_rv_b CASCADE",
			"CREATE SCHEMA dp_rv_a AUTHORIZATION "+testenv.TrustUser,
			"CREATE SCHEMA dp_rv_b AUTHORIZATION "+testenv.TrustUser,
			"CREATE TABLE dp_rv_a.t (id int)", "CREATE TABLE dp_rv_b.t (id text)",
			"INSERT INTO dp_rv_a.t VALUES (1)", "INSERT INTO dp_rv_b.t VALUES ('abc')",
			"ALTER TABLE dp_rv_a.t OWNER TO "+testenv.TrustUser, "ALTER TABLE dp_rv_b.t OWNER TO "+testenv.TrustUser)
		q := "SELECT 1 AS one FROM t WHERE id = $1"
		runScript(t, nil, nil, []action{
			{who: "A", st: simple("SET search_path = dp_rv_a")},
			{who: "A", st: sync1(parse("", q), bind("", "", txt("1")), execute("", 0))},
			{who: "A", st: simple("SET search_path = dp_rv_b")},
			{who: "A", st: sync1(parse("", q), describeStmt(""), bind("", "", txt("abc")), execute("", 0))},
		}, proxyTargets())
	})

	// Fixed: The stale-plan replay (ALTER TABLE by another connection)
	// of a batch that changes settings, for a client with startup
	// options: sync() queued restoreStartupSettings, whose releaseHeld
	// sends the held ReadyForQuery to the client even while batch.retry
	// hides the first pass; the replay then answers again. The client
	// sees ReadyForQuery before the batch's answers.
	t.Run("rv_stale_replay_with_startup_settings", func(t *testing.T) {
		t.Parallel()
		tbl := "dp_rv_replay_set"
		reset, sel := staleTable(t, tbl)
		runScript(t, map[string]string{"options": "-c work_mem=7MB"}, reset, []action{
			{who: "A", st: sync1(parse("", sel), bind("", ""), execute("", 0))},
			{sql: []string{"ALTER TABLE " + tbl + " ALTER COLUMN v TYPE varchar(10)"}},
			{who: "A", st: sync1(parse("rv_set", "SET work_mem = '3MB'"), bind("rv_p", "rv_set"),
				parse("", sel), bind("", ""), execute("rv_p", 0), execute("", 0))},
			{who: "A", st: simple("SHOW work_mem")},
		}, proxyTargets())
	})

	// PASSES. The stale-plan replay alone (no settings): hidden 0A000,
	// batch replayed, client sees each answer once.
	t.Run("rv_stale_replay_plain", func(t *testing.T) {
		t.Parallel()
		tbl := "dp_rv_replay_plain"
		reset, sel := staleTable(t, tbl)
		runScript(t, nil, reset, []action{
			{who: "A", st: sync1(parse("", sel), bind("", ""), execute("", 0))},
			{sql: []string{"ALTER TABLE " + tbl + " ALTER COLUMN v TYPE varchar(10)"}},
			{who: "A", st: sync1(parse("", sel), bind("", ""), execute("", 0))},
		}, proxyTargets())
	})

	// Fixed: the same re-parse of an unnamed statement after DDL by
	// another connection, with a Flush before the Sync (nothing executed,
	// no row went out): the proxy ends the failed batch with a Sync of its
	// own and replays it, so the client sees what PostgreSQL would send.
	t.Run("rv_stale_replay_with_flush", func(t *testing.T) {
		t.Parallel()
		tbl := "dp_rv_replay_flush"
		reset, sel := staleTable(t, tbl)
		runScript(t, nil, reset, []action{
			{who: "A", st: sync1(parse("", sel), bind("", ""), execute("", 0))},
			{sql: []string{"ALTER TABLE " + tbl + " ALTER COLUMN v TYPE varchar(10)"}},
			{who: "A", st: upTo(2, parse("", sel), bind("", ""), flushMsg)},
			{who: "A", st: sync1(execute("", 0))},
		}, proxyTargets())
	})
}

// staleTable sets up a two-row table for the stale-plan probes: the reset
// puts column v back to text (another connection then alters it), and sel
// reads every row.
func staleTable(t *testing.T, tbl string) (reset []string, sel string) {
	setup, reset := table(tbl, 2)
	directSQL(t, setup...)
	reset = append([]string{"ALTER TABLE " + tbl + " ALTER COLUMN v TYPE text"}, reset...)
	return reset, "SELECT id, v FROM " + tbl + " ORDER BY id"
}
