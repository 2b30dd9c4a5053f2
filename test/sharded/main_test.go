package sharded_test

// The package's one cluster and its two sides. Four shards start; the
// fourth's primary is "direct", the plain PostgreSQL every answer is checked
// against, and a proxy node serves s1..s3 with the tables configured. Both
// sides get the same DDL and rows here, before any test runs, so that the
// corpus, the DML steps and the placement check all see one fixture.
//
// With SHARDED_SELFCHECK=1 no proxy starts: the "proxy" side is s1 as a
// plain server, loaded with the same rows in another order. Every
// comparison must then pass, which shows the corpus is deterministic and
// the comparison sound (see README.md).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// selfCheck replaces the proxy by a second plain server.
var selfCheck = os.Getenv("SHARDED_SELFCHECK") == "1"

// proxyShards are the shards behind the proxy, in map order: the map
// splits the keyspace into equal ranges in this order.
var proxyShards = []string{"s1", "s2", "s3"}

var (
	cluster   *localpg.Cluster
	directURL string // s4, plain PostgreSQL
	proxyURL  string // the proxy node, or s1 in the self-check
	proxyName string // "proxy" or "second server", for messages
	// proxyLoadErrs are the statements of the fixture that failed through
	// the proxy side. They fail TestFixture rather than the whole package,
	// since loading (DDL broadcast, split INSERTs) is part of what is under
	// test; later tests then show the consequences.
	proxyLoadErrs []string
)

func TestMain(m *testing.M) {
	var stopNode func()
	code := testenv.RunWithCluster(m, 4, 0, func(c *localpg.Cluster) error {
		cluster = c
		var err error
		stopNode, err = setup(c)
		return err
	})
	// RunWithCluster has stopped the shards by now; the node only closes
	// its (dead) server connections and its listener.
	if stopNode != nil {
		stopNode()
	}
	os.Exit(code)
}

// setup starts the proxy (unless self-checking) and loads the fixture on
// both sides. Only failures of the harness itself (the direct side, the
// node's start) are errors.
func setup(c *localpg.Cluster) (stop func(), err error) {
	directURL = testenv.DirectURL(c, shardPrimary("s4"), testenv.AppUser, testenv.AppPassword)
	if selfCheck {
		proxyName = "second server"
		proxyURL = testenv.DirectURL(c, shardPrimary("s1"), testenv.AppUser, testenv.AppPassword)
	} else {
		proxyName = "proxy"
		n, stopNode, err := testenv.StartSharedNode(nodeConfig(c))
		if err != nil {
			return nil, err
		}
		stop = stopNode
		proxyURL = testenv.URL(n, testenv.AppUser, testenv.AppPassword)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	fx := buildFixture()
	if errs := load(ctx, directURL, fx.statements(false)); len(errs) > 0 {
		return stop, fmt.Errorf("loading the fixture on direct: %s", strings.Join(errs, "; "))
	}
	// In the self-check the second server gets the rows in another order
	// and other batches, so that a query whose answer depends on physical
	// order (no ORDER BY, or ties) shows up as a difference.
	proxyLoadErrs = load(ctx, proxyURL, fx.statements(selfCheck))
	return stop, nil
}

// nodeConfig is the proxy in front of s1..s3 (s4 is direct) with the
// fixture's tables configured.
func nodeConfig(c *localpg.Cluster) *config.Config {
	cfg := testenv.Config(c)
	var shards []config.Shard
	for _, s := range cfg.Shards {
		if s.ID != "s4" {
			shards = append(shards, s)
		}
	}
	cfg.Shards = shards
	cfg.Tables = tableConfig()
	return cfg
}

func shardPrimary(id string) *localpg.Server {
	for _, sh := range cluster.Shards {
		if sh.ID == id {
			return sh.Primary
		}
	}
	panic("no shard " + id)
}

// shardURL connects straight to a shard's primary as the app user.
func shardURL(id string) string {
	return testenv.DirectURL(cluster, shardPrimary(id), testenv.AppUser, testenv.AppPassword)
}

// load runs stmts one by one (each its own implicit transaction, as an
// application's migration and import would) and returns the failures,
// each with the start of its statement. A connection lost on the way is
// opened again, so one crash does not hide everything after it.
func load(ctx context.Context, url string, stmts []string) []string {
	var errs []string
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	for _, s := range stmts {
		if conn == nil || conn.IsClosed() {
			var err error
			if conn, err = pgx.Connect(ctx, url); err != nil {
				return append(errs, "connect: "+err.Error())
			}
		}
		if _, err := conn.Exec(ctx, s); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", abbrev(s, 70), err))
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return errs
			}
		}
	}
	return errs
}

// dmlTables are written by TestDML, which may have run already.
var dmlTables = map[string]bool{"wallets": true, "wallet_log": true, "currencies": true, "kv": true}

// TestFixture reports failures of loading through the proxy and checks
// the row counts on both sides, so that a broken load is named once here
// rather than guessed at from a hundred corpus differences.
func TestFixture(t *testing.T) {
	if n := len(proxyLoadErrs); n > 0 {
		shown := proxyLoadErrs[:min(n, 5)]
		t.Errorf("%d fixture statements failed through the %s; first:\n  %s",
			n, proxyName, strings.Join(shown, "\n  "))
	}
	ctx := testenv.TestCtx(t, 20*time.Second)
	direct := testenv.Connect(t, ctx, directURL)
	proxy := testenv.Connect(t, ctx, proxyURL)
	for _, tb := range buildFixture().tables {
		q := "SELECT count(*) FROM " + tb.name
		var nd, np int
		if err := direct.QueryRow(ctx, q).Scan(&nd); err != nil {
			t.Fatalf("direct: %s: %v", q, err)
		}
		if nd != len(tb.rows) && !dmlTables[tb.name] {
			t.Errorf("direct: %s has %d rows, the generator made %d", tb.name, nd, len(tb.rows))
		}
		if err := proxy.QueryRow(ctx, q).Scan(&np); err != nil {
			t.Errorf("%s: %s: %v", proxyName, q, err)
		} else if np != nd {
			t.Errorf("%s: %s has %d rows, direct %d", proxyName, tb.name, np, nd)
		}
	}
}

// abbrev shortens s to n runes for messages.
func abbrev(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}
