package pgbench_test

// pgbench through the proxy with its tables sharded: `pgbench -i` (DDL
// broadcast, reference-table inserts, a sharded COPY with FREEZE inside one
// transaction committed on both shards, VACUUM and primary keys on every
// shard) must leave the accounts spread over the shards by key, and a
// script reading and updating single accounts must run without a failed
// transaction, in the simple and the extended protocol.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	testenv.Main(m, 2, 0, &cluster)
}

const scale = 4

func TestPgbenchSharded(t *testing.T) {
	ctx := testenv.TestCtx(t, 5*time.Minute)
	cfg := testenv.Config(cluster)
	cfg.Tables = []config.Table{
		{Name: "pgbench_accounts", Key: "aid"},
		{Name: "pgbench_history", Key: "aid"},
		{Name: "pgbench_branches", Reference: true},
		{Name: "pgbench_tellers", Reference: true},
	}
	n := testenv.StartNode(t, cfg, node.Options{})
	url := testenv.URL(n, testenv.AppUser, testenv.AppPassword)

	out := runPgbench(t, ctx, "-i", "-s", itoa(scale), "-q", url)
	t.Logf("pgbench -i: %s", lastLines(out, 3))

	total := 0
	for _, sh := range cluster.Shards {
		conn := testenv.Connect(t, ctx, testenv.DirectURL(cluster, sh.Primary, testenv.AppUser, testenv.AppPassword))
		var accounts, branches, tellers int
		if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_branches), (SELECT count(*) FROM pgbench_tellers)").
			Scan(&accounts, &branches, &tellers); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d accounts, %d branches, %d tellers", sh.ID, accounts, branches, tellers)
		if branches != scale || tellers != 10*scale {
			t.Errorf("%s: reference tables hold %d branches and %d tellers, want %d and %d", sh.ID, branches, tellers, scale, 10*scale)
		}
		// Half of 400,000 each, give or take a few percent: the hash
		// spreads consecutive keys evenly.
		if accounts < 180000 || accounts > 220000 {
			t.Errorf("%s holds %d accounts, want about half of %d", sh.ID, accounts, 100000*scale)
		}
		var misplaced int
		if err := conn.QueryRow(ctx, misplacedQuery(sh.ID, len(cluster.Shards))).Scan(&misplaced); err != nil {
			t.Fatal(err)
		}
		if misplaced != 0 {
			t.Errorf("%s holds %d accounts another shard owns", sh.ID, misplaced)
		}
		var prepared int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_xacts").Scan(&prepared); err != nil {
			t.Fatal(err)
		}
		if prepared != 0 {
			t.Errorf("%s has %d prepared transactions left", sh.ID, prepared)
		}
		total += accounts
		conn.Close(ctx)
	}
	if total != 100000*scale {
		t.Fatalf("the shards hold %d accounts, want %d", total, 100000*scale)
	}

	script := filepath.Join(t.TempDir(), "single-key.sql")
	if err := os.WriteFile(script, []byte(`\set aid random(1, 100000 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, :delta, CURRENT_TIMESTAMP);
END;
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"simple", "extended", "prepared"} {
		out := runPgbench(t, ctx, "-n", "-M", mode, "-c", "4", "-j", "2", "-t", "250", "-f", script, url)
		m := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(out)
		if m == nil || m[1] != "0" {
			t.Errorf("pgbench -M %s: failed transactions %v\n%s", mode, m, lastLines(out, 20))
		}
		if !strings.Contains(out, "number of transactions actually processed: 1000/1000") {
			t.Errorf("pgbench -M %s did not process every transaction:\n%s", mode, lastLines(out, 20))
		}
	}
}

// misplacedQuery counts the accounts on a shard whose key hashes outside
// the shard's range of the initial map (N equal ranges in shard order).
func misplacedQuery(id string, shards int) string {
	i := 0
	for j, sh := range cluster.Shards {
		if sh.ID == id {
			i = j
		}
	}
	lo, hi := rangeBounds(i, shards)
	cond := "hashint8extended(aid, 0) >= " + lo
	if hi != "" {
		cond += " AND hashint8extended(aid, 0) < " + hi
	}
	return "SELECT count(*) FROM pgbench_accounts WHERE NOT (" + cond + ")"
}

func runPgbench(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %s: %v\n%s", strings.Join(args[:len(args)-1], " "), err, lastLines(string(out), 30))
	}
	return string(out)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
