package distributed_test

// Two-phase commit under crashes: the proxy is killed (SIGKILL, by its own
// fault-injection hook) between PREPARE TRANSACTION and COMMIT PREPARED,
// 100 times, while several clients write rows to two shards at once. After
// the last restart the recovery loop must leave no prepared transaction on
// any shard, and every write must be wholly there or wholly absent.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/test/testenv"
)

const crashes = 100

func TestCrashBetweenPrepareAndCommit(t *testing.T) {
	ctx := testenv.TestCtx(t, 8*time.Minute)
	bin := testenv.BuildBinary(t)
	testenv.ExecOnPrimaries(t, ctx, cluster, "DROP TABLE IF EXISTS pairs; CREATE TABLE pairs (k bigint PRIMARY KEY, txn int NOT NULL)")
	yaml := crashConfig()
	dataDir := filepath.Join(t.TempDir(), "data")
	keys := keysOnShards()

	var mu sync.Mutex
	attempted := 0 // transaction numbers handed out
	next := func() int {
		mu.Lock()
		defer mu.Unlock()
		attempted++
		return attempted
	}
	for i := 0; i < crashes; i++ {
		fault := "kill-after-prepare"
		if i%2 == 1 {
			fault = "kill-after-decision"
		}
		p := testenv.ServeBinaryWith(t, bin, yaml, testenv.ServeOptions{
			DataDir: dataDir, Env: []string{"SHARDPROXY_FAULT=" + fault}, MayExit: true,
		})
		url := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", testenv.AppUser, testenv.AppPassword, p.Addr, testenv.Database)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := writeUntilLost(ctx, url, next, keys); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("crash %d (%s): a write failed with an error of the server's, not a lost connection: %v\n%s", i, fault, err, p.LogTail(2000))
		}
		testenv.WaitFor(t, ctx, "the proxy to die at its fault point", func() (bool, error) { return p.Exited(), nil })
	}

	// A proxy without faults recovers what the last crash left.
	p := testenv.ServeBinaryWith(t, bin, yaml, testenv.ServeOptions{DataDir: dataDir})
	for _, sh := range cluster.Shards {
		conn := testenv.Connect(t, ctx, testenv.DirectURL(cluster, sh.Primary, testenv.AppUser, testenv.AppPassword))
		testenv.WaitFor(t, ctx, "recovery to settle every prepared transaction on "+sh.ID, func() (bool, error) {
			var n int
			err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_xacts").Scan(&n)
			return n == 0, err
		})
		conn.Close(ctx)
	}
	// Its own distributed commits, and the decisions recovery settled,
	// are forgotten: the Raft state keeps no decision for good.
	url := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", testenv.AppUser, testenv.AppPassword, p.Addr, testenv.Database)
	conn := testenv.Connect(t, ctx, url)
	for range 20 {
		n := next()
		if _, err := conn.Exec(ctx, "INSERT INTO pairs (k, txn) VALUES ($1, $3), ($2, $3)", uniqueKey(keys[0], n), uniqueKey(keys[1], n), n); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)
	testenv.WaitFor(t, ctx, "every commit decision to be forgotten (shardproxy_twopc_decisions_pending 0)", func() (bool, error) {
		v, err := metricValue(ctx, p.HTTPAddr, "shardproxy_twopc_decisions_pending")
		return err == nil && v == 0, err
	})

	// Every transaction wrote one row on each shard: both or neither.
	counts := map[int]int{}
	for _, sh := range cluster.Shards {
		conn := testenv.Connect(t, ctx, testenv.DirectURL(cluster, sh.Primary, testenv.AppUser, testenv.AppPassword))
		rows, err := conn.Query(ctx, "SELECT txn FROM pairs")
		if err != nil {
			t.Fatal(err)
		}
		txns, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range txns {
			counts[x]++
		}
		conn.Close(ctx)
	}
	committed := 0
	for txn, n := range counts {
		if n != 2 {
			t.Errorf("transaction %d left %d of its 2 rows", txn, n)
		}
		committed++
	}
	t.Logf("%d crashes, %d transactions attempted, %d committed whole", crashes, attempted, committed)
	if committed == 0 {
		t.Fatal("no transaction committed: the test proves nothing")
	}
}

// writeUntilLost inserts pairs of rows on two shards until the proxy dies;
// an error the proxy or a server reported (rather than the connection
// dropping) is returned.
func writeUntilLost(ctx context.Context, url string, next func() int, keys [2][]int64) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil // the proxy died before this client got in
	}
	defer conn.Close(context.Background())
	for {
		n := next()
		_, err := conn.Exec(ctx, "INSERT INTO pairs (k, txn) VALUES ($1, $3), ($2, $3)", uniqueKey(keys[0], n), uniqueKey(keys[1], n), n)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return err
		}
		if err != nil {
			return nil
		}
	}
}

// uniqueKey is the n-th key owned by one shard (keys are never reused).
func uniqueKey(owned []int64, n int) int64 { return owned[n] }

// keysOnShards lists, for each of the two shards, keys it owns, enough for
// every transaction the test can make.
func keysOnShards() [2][]int64 {
	ranges := keyspace.Split(2)
	var out [2][]int64
	for k := int64(1); len(out[0]) < 200000 || len(out[1]) < 200000; k++ {
		id := keyspace.Int(k)
		if ranges[0].Contains(id) {
			out[0] = append(out[0], k)
		} else {
			out[1] = append(out[1], k)
		}
	}
	return out
}

func crashConfig() string {
	y := "node_id: n1\nusers:\n  - {name: app, password: app}\nshards:\n"
	for _, sh := range cluster.Shards {
		y += fmt.Sprintf("  - {id: %s, primary: %s}\n", sh.ID, sh.Primary.Addr())
	}
	y += "tables:\n  - {name: pairs, key: k}\n"
	return y
}

// metricValue reads one unlabelled metric from a proxy's /metrics.
func metricValue(ctx context.Context, httpAddr, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}
