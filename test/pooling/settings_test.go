package pooling_test

// Session settings under transaction pooling with ONE server connection
// shared by three clients. The same script runs through the proxy and
// against PostgreSQL directly (each client with a session of its own there),
// and every answer, including the ParameterStatus values each client was
// told, must be the same: each client sees its own settings, ROLLBACK,
// SET LOCAL, savepoints and set_config are honoured as PostgreSQL honours
// them, RESET goes back to the startup value, and DISCARD ALL touches only
// the client that ran it.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
)

// step is one statement of one client. With args it runs in the extended
// protocol, else as a simple query.
type step struct {
	client string
	sql    string
	args   []string
}

func settingsScript() []step {
	var s []step
	add := func(client string, sqls ...string) {
		for _, q := range sqls {
			s = append(s, step{client: client, sql: q})
		}
	}
	show := func() {
		for _, c := range []string{"a", "b", "c"} {
			add(c, "show work_mem", "show application_name", "select current_setting('search_path')", "show timezone")
			s = append(s, step{client: c, sql: "select current_setting($1)", args: []string{"work_mem"}})
		}
	}
	add("a", "set application_name = 'a'", "set search_path = a_schema, public", "set work_mem = '7MB'",
		"set timezone = 'Asia/Tokyo'")
	add("b", "set application_name = 'b'", `set search_path = "B schema"`, "set work_mem = '11MB'")
	show()
	show()

	// ROLLBACK undoes a SET; SET LOCAL ends with its transaction; a SET in
	// a committed transaction stays.
	add("a", "begin", "set work_mem = '9MB'", "show work_mem", "rollback", "show work_mem")
	add("b", "show work_mem")
	add("a", "begin", "set local work_mem = '9MB'", "show work_mem", "commit", "show work_mem")
	add("a", "begin", "set work_mem = '8MB'", "set local application_name = 'a-local'", "commit",
		"show work_mem", "show application_name")
	add("b", "show work_mem", "show application_name")
	// An aborted transaction and a savepoint.
	add("a", "begin", "set work_mem = '10MB'", "select 1/0", "show work_mem", "rollback", "show work_mem")
	add("a", "begin", "set work_mem = '12MB'", "savepoint s", "set work_mem = '13MB'", "rollback to s",
		"show work_mem", "commit", "show work_mem")
	// set_config, session and local.
	add("a", "select set_config('work_mem', '5MB', false)", "show work_mem")
	add("b", "show work_mem")
	add("a", "select set_config('work_mem', '6MB', true)", "show work_mem")
	// Several statements in one query string.
	add("b", "set work_mem = '15MB'; set application_name = 'b2'; show work_mem")
	add("a", "show work_mem", "show application_name")
	show()

	// RESET: back to the server default, or to the client's startup value.
	add("a", "reset work_mem", "show work_mem")
	add("c", "set work_mem = '20MB'", "show work_mem")
	add("b", "reset all", "show work_mem", "show application_name", "select current_setting('search_path')")
	show()

	// DISCARD ALL resets only the client that runs it.
	add("a", "set work_mem = '21MB'")
	add("b", "set work_mem = '22MB'", "set application_name = 'b3'")
	add("b", "discard all")
	show()
	return s
}

// startupResetScript: RESET, RESET ALL, SET ... TO DEFAULT and DISCARD ALL
// go back to the values the client gave at startup (PostgreSQL's reset
// values), not to the server's defaults, and the client is told so
// (ParameterStatus application_name).
func startupResetScript() []step {
	var s []step
	add := func(client string, sqls ...string) {
		for _, q := range sqls {
			s = append(s, step{client: client, sql: q})
		}
	}
	add("c", "show work_mem", "set work_mem = '20MB'", "show work_mem", "reset work_mem", "show work_mem")
	add("a", "set work_mem = '7MB'", "show work_mem")
	add("c", "show work_mem", "set work_mem = '21MB'", "set work_mem to default", "show work_mem")
	add("c", "set application_name = 'c2'", "set search_path = other", "reset all",
		"show work_mem", "show application_name", "select current_setting('search_path')")
	add("a", "show work_mem")
	add("c", "set application_name = 'c3'", "set work_mem = '22MB'", "discard all",
		"show work_mem", "show application_name", "select current_setting('search_path')")
	add("a", "show work_mem", "show application_name")
	add("c", "show work_mem", "show application_name")
	return s
}

func TestSettingsReplay(t *testing.T) {
	got := compareScript(t, settingsScript(), true)
	// A few answers spelled out, so the test does not rest on the
	// comparison alone.
	requireAnswered(t, got,
		"a> show work_mem[] => SHOW: 7MB",
		"b> show work_mem[] => SHOW: 11MB",
		"c> show work_mem[] => SHOW: 3MB",
		"a> rollback[] => ROLLBACK",
	)
	// Session pooling passes settings through untouched; same answers.
	t.Run("session pooling", func(t *testing.T) { compareScript(t, settingsScript(), false) })
}

func TestStartupSettingsSurviveReset(t *testing.T) {
	t.Run("transaction pooling", func(t *testing.T) { compareScript(t, startupResetScript(), true) })
	t.Run("session pooling", func(t *testing.T) { compareScript(t, startupResetScript(), false) })
}

// compareScript runs script through a node and directly, fails on every
// difference, and returns the proxy's transcript. With shared, the node
// pools transactions on one server connection; else it pools sessions.
func compareScript(t *testing.T, script []step, shared bool) []string {
	t.Helper()
	tune := txPool(1)
	if !shared {
		tune = func(c *config.Config) { c.Pool.Mode = config.PoolSession; c.Pool.Size = 3 }
	}
	n := startNode(t, tune, node.Options{})
	ctx := testenv.TestCtx(t, 60*time.Second)

	run := func(t *testing.T, url string) (transcript []string, pids map[string]uint32) {
		conns := map[string]*pgconn.PgConn{}
		for _, c := range []string{"a", "b", "c"} {
			cfg, err := pgconn.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ConnectTimeout = 10 * time.Second
			if c == "c" {
				// Startup settings, as libpq's options and application_name.
				cfg.RuntimeParams["options"] = "-c work_mem=3MB -c search_path=c_schema"
				cfg.RuntimeParams["application_name"] = "c"
			}
			pc, err := pgconn.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatalf("connect %s: %v", c, err)
			}
			t.Cleanup(func() { _ = pc.Close(context.Background()) })
			conns[c] = pc
		}
		pids = map[string]uint32{}
		for _, st := range script {
			pc := conns[st.client]
			res := runStep(ctx, pc, st)
			transcript = append(transcript, fmt.Sprintf("%s> %s%v => %s [app=%q tz=%q tx=%c]", st.client, st.sql, st.args, res,
				pc.ParameterStatus("application_name"), pc.ParameterStatus("TimeZone"), pc.TxStatus()))
		}
		for c, pc := range conns {
			r := pc.ExecParams(ctx, "select pg_backend_pid()", nil, nil, nil, nil).Read()
			if r.Err != nil || len(r.Rows) != 1 {
				t.Fatalf("%s: pg_backend_pid: %v", c, r.Err)
			}
			var pid uint32
			fmt.Sscan(string(r.Rows[0][0]), &pid)
			pids[c] = pid
		}
		return transcript, pids
	}

	want, _ := run(t, directURL())
	got, pids := run(t, proxyURL(n))
	if shared && (pids["a"] != pids["b"] || pids["b"] != pids["c"]) {
		t.Fatalf("the clients did not share one server connection: %v", pids)
	}
	mismatches := 0
	for i := range want {
		if got[i] != want[i] {
			mismatches++
			t.Errorf("step %d differs:\n  proxy:  %s\n  direct: %s", i, got[i], want[i])
		}
	}
	if mismatches == 0 {
		t.Logf("%d steps, all as PostgreSQL answers them", len(want))
	} else {
		t.Logf("the transcript through the proxy:\n%s", strings.Join(got, "\n"))
	}
	return got
}

// requireAnswered fails for each of wants that no line of the transcript
// starts with.
func requireAnswered(t *testing.T, transcript []string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		found := false
		for _, l := range transcript {
			if strings.HasPrefix(l, w) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no step through the proxy answered %q", w)
		}
	}
}

// runStep runs one step and renders every result: tag and rows, or the
// error's SQLSTATE.
func runStep(ctx context.Context, pc *pgconn.PgConn, st step) string {
	var results []*pgconn.Result
	var err error
	if st.args != nil {
		params := make([][]byte, len(st.args))
		for i, a := range st.args {
			params[i] = []byte(a)
		}
		r := pc.ExecParams(ctx, st.sql, params, nil, nil, nil).Read()
		results, err = []*pgconn.Result{r}, r.Err
	} else {
		results, err = pc.Exec(ctx, st.sql).ReadAll()
	}
	if err != nil {
		return "ERROR " + testenv.PGCode(err)
	}
	var parts []string
	for _, r := range results {
		var rows []string
		for _, row := range r.Rows {
			var vals []string
			for _, v := range row {
				vals = append(vals, string(v))
			}
			rows = append(rows, strings.Join(vals, ","))
		}
		p := r.CommandTag.String()
		if len(rows) > 0 {
			p += ": " + strings.Join(rows, "; ")
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " | ")
}
