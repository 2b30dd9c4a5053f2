package drivers_test

// node-postgres through the proxy: node/pg_driver.js, on the machine's
// node, with the pg version pinned in node/package.json and
// node/package-lock.json (installed by `npm ci` when node_modules lacks
// it). The script prints what it saw; the test checks it, the table it
// leaves and the notification it sends.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// npmTimeout bounds `npm ci`; it retries a fetch once, so an unreachable
// registry fails well within it.
const npmTimeout = 3 * time.Minute

// requireNodePg fails the test unless node runs and node/node_modules has
// the pinned pg, running `npm ci` when it has not.
func requireNodePg(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on the PATH: install Node.js (Debian packages nodejs and npm; scripts/deps.sh test does)", tool)
		}
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	readJSON(t, filepath.Join("node", "package.json"), &pkg)
	want := pkg.Dependencies["pg"]
	if installedPg(t) == want {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--fetch-retries=1", "--fetch-timeout=30000")
	cmd.Dir = "node"
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in test/drivers/node failed after %s (can npm reach its registry? it installs pg %s from package-lock.json): %v\n%s",
			time.Since(start).Round(time.Second), want, err, out)
	}
	t.Logf("npm ci: %s", time.Since(start).Round(time.Millisecond))
	if got := installedPg(t); got != want {
		t.Fatalf("after npm ci, node_modules has pg %q, package.json pins %q", got, want)
	}
}

// installedPg is the version of pg in node/node_modules, "" when there is
// none.
func installedPg(t *testing.T) string {
	t.Helper()
	path := filepath.Join("node", "node_modules", "pg", "package.json")
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	var pkg struct {
		Version string `json:"version"`
	}
	readJSON(t, path, &pkg)
	return pkg.Version
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestNodePostgres(t *testing.T) {
	ctx := testenv.TestCtx(t, 5*time.Minute)
	requireNodePg(t, ctx)
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			table := "js_items_" + tg.name
			super := prepare(t, ctx, table)
			listener := listen(t, ctx, "drivers_js")
			url := tg.url(t)
			most := watchServerConns(t, ctx)
			s := runScript(t, ctx, "node", "node", "pg_driver.js", url, tg.name)
			t.Logf("pg %s on node %s", version(s, "pg"), version(s, "node"))
			tg.checkServerConns(t, most())

			const workers, perWorker = 8, 40
			wantListen := map[string]any{"code": "0A000"}
			if tg.name != config.PoolTransaction {
				wantListen = map[string]any{"code": "", "payloads": []string{"hello"}}
			}
			checkSummary(t, s, map[string]any{
				"types": map[string]bool{"label": true, "amount": true, "big": true, "doc": true,
					"tags": true, "raw": true, "at": true},
				"named_reads":         workers * perWorker,
				"shape_mismatches":    []string{},
				"setting_mismatches":  []string{},
				"changed_result_type": map[string]any{"before": 10, "after": "0A000", "fresh": 11},
				"tx_commit_inside":    20,
				"tx_rollback_left":    0,
				"tx_error":            map[string]any{"dup": "23505", "aborted": "25P02", "rollback": "", "after_worker": 0},
				"multi_statement":     []map[string]int{{"a": 1}, {"b": 2}},
				"div_zero_code":       "22012",
				"syntax_error_code":   "42601",
				"after_errors":        map[string]int{"worker": 0, "n": 1},
				"listen":              wantListen,
				"abandoned":           "clean",
			})

			got := queryInts(t, ctx, super, fmt.Sprintf(`select count(*), count(*) filter (where worker = 100),
				count(*) filter (where worker >= 200 or label = 'changed'), count(distinct worker) filter (where worker between 0 and %d)
				from %s`, workers-1, table))
			// Row 0, the workers' rows and the committed transaction's 20.
			if want := []int64{1 + workers*perWorker + 20, 20, 0, workers}; !slices.Equal(got, want) {
				t.Errorf("rows, committed, rolled back, workers in %s: %d, want %d", table, got, want)
			}
			expectNotifications(t, ctx, listener, "drivers_js", "from pg "+tg.name)
			if got := queryInts(t, ctx, super, `select count(*) from pg_stat_activity
				where usename = 'app' and state like 'idle in transaction%'`); got[0] != 0 {
				t.Errorf("%d server connections left idle in a transaction", got[0])
			}
		})
	}
}
