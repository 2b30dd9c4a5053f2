// Second review: probes of session state under transaction pooling and of
// protocol corner cases, each a differential script (PostgreSQL directly vs
// the proxy). Each case was written against a bug a review found; all are fixed.
//
//	go test -count=1 ./test/protocol/ -run TestReview2 -v
package protocol_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// tx1Targets: transaction pooling with ONE server connection (two clients
// share it), and with a fresh server connection per transaction (a client's
// state must be replayed each time).
func tx1Targets() []target {
	return []target{
		proxyTarget("transaction-pool-1", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 1
			c.Pool.WaitTimeout = 3 * time.Second
		}),
		proxyTarget("transaction-fresh-server", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 1
			c.Pool.WaitTimeout = 3 * time.Second
			c.Pool.ServerLifetime = time.Nanosecond
		}),
	}
}

func TestReview2(t *testing.T) {
	// Once a cross-client leak and a lost setting. A custom GUC set with plain
	// SET. PostgreSQL creates it as a placeholder variable flagged
	// GUC_NO_SHOW_ALL, so it never appears in pg_settings: readSettings
	// (batch.go, readSettingsQuery "source = 'session'") does not see it.
	// The value stays on the pooled server connection (client B reads
	// A's tenant) and is not replayed for A on another connection.
	t.Run("rv2_custom_guc_set", func(t *testing.T) {
		t.Parallel()
		runScript(t, nil, nil, []action{
			{who: "A", st: simple("SET myapp.tenant = 'tenant_a'")},
			{who: "A", st: simple("SELECT current_setting('myapp.tenant', true) AS a_tenant")},
			{who: "B", st: simple("SELECT current_setting('myapp.tenant', true) AS b_tenant")},
			{who: "A", st: simple("SELECT current_setting('myapp.tenant', true) AS a_tenant_again")},
		}, tx1Targets())
	})

	// (Same cause, via set_config(..., false), the form the README
	// and DESIGN say is replayed).
	t.Run("rv2_custom_guc_set_config", func(t *testing.T) {
		t.Parallel()
		runScript(t, nil, nil, []action{
			{who: "A", st: simple("SELECT set_config('myapp.tenant', 'tenant_a', false)")},
			{who: "B", st: simple("SELECT current_setting('myapp.tenant', true) AS b_tenant")},
			{who: "A", st: simple("SELECT current_setting('myapp.tenant', true) AS a_tenant")},
		}, tx1Targets())
	})

	// A custom GUC in the startup options: applied at login with
	// set_config but invisible to pg_settings, so s.startup lacks it: it
	// is gone on the next server connection, and RESET ALL (session and
	// transaction pooling) does not bring it back.
	t.Run("rv2_custom_guc_startup_options", func(t *testing.T) {
		t.Parallel()
		runScript(t, map[string]string{"options": "-c myapp.tenant=st"}, nil, []action{
			{who: "A", st: simple("SELECT current_setting('myapp.tenant', true) AS t1")},
			{who: "A", st: simple("SELECT current_setting('myapp.tenant', true) AS t2")},
			{who: "A", st: simple("RESET ALL")},
			{who: "A", st: simple("SELECT current_setting('myapp.tenant', true) AS t3")},
		}, proxyTargets())
	})

	// Once a privilege leak. SET ROLE: "role" is GUC_NO_SHOW_ALL, not in
	// pg_settings, so it is never read back: client B runs as A's role on
	// the shared server connection, and A loses its role on another one.
	t.Run("rv2_set_role", func(t *testing.T) {
		t.Parallel()
		superSQL(t,
			"DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rv2_role') THEN CREATE ROLE rv2_role NOLOGIN; END IF; END$$",
			"GRANT rv2_role TO "+testenv.TrustUser)
		runScript(t, nil, nil, []action{
			{who: "A", st: simple("SET ROLE rv2_role")},
			{who: "B", st: simple("SELECT current_user AS b_user")},
			{who: "A", st: simple("SELECT current_user AS a_user")},
		}, tx1Targets())
	})

	// set_config(..., false) inside a DO block: the proxy cannot read the
	// block, so it reads the session's settings back afterwards (a DO
	// block or CALL makes the transaction opaque). The same inside a user
	// function called from a SELECT is not detected yet (see the README).
	t.Run("rv2_set_config_in_do_block", func(t *testing.T) {
		t.Parallel()
		runScript(t, nil, nil, []action{
			{who: "A", st: simple("DO $$BEGIN PERFORM set_config('statement_timeout', '77s', false); END$$")},
			{who: "B", st: simple("SHOW statement_timeout")},
			{who: "A", st: simple("SHOW statement_timeout")},
		}, tx1Targets())
	})

	// Once a leak. A session advisory lock taken in a DO block (dollar
	// quotes hide it from the planner) stays with the pooled connection
	// after the client has left.
	t.Run("rv2_advisory_lock_in_do", func(t *testing.T) {
		t.Parallel()
		runScript(t, nil, nil, []action{
			{who: "A", st: simple("DO $$BEGIN PERFORM pg_advisory_lock(77077); END$$")},
			{closeWho: "A"},
			{who: "B", st: simple("SELECT count(*) AS b_holds FROM pg_locks WHERE locktype = 'advisory' AND objid = 77077 AND pid = pg_backend_pid()")},
		}, tx1Targets()[:1])
	})

	// Once a cross-client leak. LISTEN inside a DO block is not refused;
	// the pooled connection keeps listening after the client left, and
	// relay forwards every NotificationResponse ('A') to whoever holds the
	// connection: client B receives A's notification.
	t.Run("rv2_listen_in_do", func(t *testing.T) {
		t.Parallel()
		runScript(t, nil, nil, []action{
			{who: "A", st: simple("DO $$BEGIN EXECUTE 'LISTEN rv2_chan'; END$$")},
			{closeWho: "A"},
			{who: "B", st: simple("BEGIN")},
			{sql: []string{"NOTIFY rv2_chan, 'for A only'"}},
			{who: "B", st: simple("SELECT 1 AS one")},
			{who: "B", st: simple("COMMIT")},
		}, tx1Targets()[:1])
	})

	// PASSES. Pool of one: A's explicit transaction with an error and a
	// ROLLBACK TO SAVEPOINT undoing a SET; B (a different tenant) runs
	// between A's transactions; DateStyle/TimeZone/search_path/
	// application_name differ per client.
	t.Run("rv2_interleaved_settings", func(t *testing.T) {
		t.Parallel()
		runScript(t, nil, nil, []action{
			{who: "A", st: simple("SET DateStyle = 'German'; SET TimeZone = 'Asia/Tokyo'; SET search_path = pg_catalog, public; SET application_name = 'rv2_a'")},
			{who: "B", st: simple("SET DateStyle = 'SQL, DMY'; SET TimeZone = 'UTC'")},
			{who: "A", st: simple("BEGIN")},
			{who: "A", st: simple("SAVEPOINT s1")},
			{who: "A", st: simple("SET work_mem = '11MB'")},
			{who: "A", st: simple("SELECT set_config('TimeZone', 'America/Lima', true)")},
			{who: "A", st: simple("SELECT 1/0")},
			{who: "A", st: simple("ROLLBACK TO SAVEPOINT s1")},
			{who: "A", st: simple("SHOW work_mem; SHOW TimeZone")},
			{who: "A", st: simple("COMMIT")},
			{who: "B", st: simple("SELECT '2020-01-02 03:04:05+00'::timestamptz::text AS ts; SHOW search_path; SHOW application_name; SHOW work_mem")},
			{who: "A", st: simple("SELECT '2020-01-02 03:04:05+00'::timestamptz::text AS ts; SHOW search_path; SHOW application_name; SHOW work_mem")},
		}, tx1Targets())
	})

	// PASSES. A COPY with a bad row inside a transaction, then ROLLBACK,
	// then another client on the same server connection.
	t.Run("rv2_copy_in_tx_error", func(t *testing.T) {
		t.Parallel()
		tbl := "dp_rv2_copy_tx"
		setup, reset := table(tbl, 0)
		directSQL(t, setup...)
		runScript(t, nil, reset, []action{
			{who: "A", st: simple("BEGIN")},
			{who: "A", st: upTo(1, query("COPY "+tbl+" FROM STDIN"))},
			{who: "A", st: batch(1, copyData("1\ta\n"), copyData("x\tb\n"), copyDone)},
			{who: "A", st: simple("SELECT 1")},
			{who: "A", st: simple("ROLLBACK")},
			{who: "B", st: simple("SELECT count(*) FROM " + tbl)},
		}, tx1Targets())
	})

	// PASS. Protocol corner cases (all targets): Execute with max_rows on
	// INSERT RETURNING, Close portal then Execute, binary/mixed formats,
	// RAISE NOTICE mid-batch, an error mid multi-statement query, 10 MB
	// DataRows, 300 Syncs in one write.
	tbl := "dp_rv2_proto"
	setup, reset := table(tbl, 0)
	directSQL(t, setup...)
	directSQL(t, `CREATE OR REPLACE FUNCTION rv2_notice(i int) RETURNS int LANGUAGE plpgsql AS
		$$BEGIN RAISE NOTICE 'rv2 notice %', i; RETURN i; END$$`)
	var many []pgproto3.FrontendMessage
	for i := 0; i < 300; i++ {
		many = append(many, parse("", "SELECT 1 AS x"), bind("", ""), execute("", 0), syncMsg)
		if i%50 == 49 {
			many = append(many, query("SELECT 2 AS y"))
		}
	}
	protoCases := []protoCase{
		{name: "rv2_execute_maxrows_insert_returning", reset: reset, steps: []step{
			sync1(parse("", "INSERT INTO "+tbl+" SELECT g, 'r' FROM generate_series(1, 3) g RETURNING id"),
				bind("", ""), execute("", 1), describePortal(""), execute("", 1), execute("", 0), execute("", 0)),
			simple("SELECT count(*) FROM " + tbl),
		}},
		{name: "rv2_close_portal_then_execute", steps: []step{
			simple("BEGIN"),
			sync1(parse("rv2_s", "SELECT generate_series(1, 4) AS g"), bind("rv2_p", "rv2_s"), execute("rv2_p", 2),
				describePortal("rv2_p"), closePortal("rv2_p"), execute("rv2_p", 1)),
			sync1(bind("rv2_p", "rv2_s"), execute("rv2_p", 0)),
			simple("COMMIT"),
		}},
		{name: "rv2_bind_binary_mixed_formats", steps: []step{
			sync1(parse("rv2_b", "SELECT $1::int4 + 1 AS n, $2::text AS t, $1::int4 AS m", oidInt4, oidText),
				&pgproto3.Bind{PreparedStatement: "rv2_b", ParameterFormatCodes: []int16{1, 0},
					Parameters: [][]byte{int4Binary(41), txt("txt")}, ResultFormatCodes: []int16{1, 0, 1}},
				describePortal(""), execute("", 0),
				&pgproto3.Bind{PreparedStatement: "rv2_b", ParameterFormatCodes: []int16{1},
					Parameters: [][]byte{int4Binary(7), int4Binary(8)}, ResultFormatCodes: []int16{1}},
				execute("", 0)),
			sync1(&pgproto3.Bind{PreparedStatement: "rv2_b", ParameterFormatCodes: []int16{0, 1},
				Parameters: [][]byte{txt("5"), txt("zz")}, ResultFormatCodes: []int16{0, 1, 0}}, execute("", 0)),
		}},
		{name: "rv2_notice_mid_batch", steps: []step{
			sync1(parse("", "SELECT rv2_notice(1)"), bind("", ""), execute("", 0),
				parse("rv2_n", "SELECT rv2_notice($1)", oidInt4), bind("", "rv2_n", txt("2")), execute("", 0),
				bind("", "rv2_n", txt("3")), execute("", 0)),
			simple("SELECT rv2_notice(4); SELECT rv2_notice(5)"),
		}},
		{name: "rv2_multi_result_error_middle", steps: []step{
			simple("SELECT 1 AS a; SELECT 1/0; SELECT 2 AS b"),
			simple("BEGIN; SELECT 1 AS a; SELECT 1/0; SELECT 2 AS b"),
			simple("SELECT 3"),
			simple("ROLLBACK"),
		}},
		{name: "rv2_large_datarow", steps: []step{
			simple("SELECT length(repeat('x', 10 * 1024 * 1024)) AS len, md5(repeat('x', 10 * 1024 * 1024)) AS h"),
			sync1(parse("", "SELECT repeat('y', 10 * 1024 * 1024) AS big"), bind("", ""), execute("", 0)),
			simple("SELECT 'after' AS a"),
		}},
		{name: "rv2_many_syncs_one_write", steps: []step{batch(306, many...)}},
	}
	for _, pc := range protoCases {
		t.Run(pc.name, func(t *testing.T) { runCase(t, pc) })
	}
}
