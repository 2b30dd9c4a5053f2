// Two clients through one server connection: in transaction pooling the
// proxy keeps protocol-level and SQL-level prepared statements per client,
// so two clients that use the same statement name for different queries
// must each get their own statement, as if each had a server of its own.
package protocol_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

func TestInterleavedStatementNames(t *testing.T) {
	// Client A's and B's steps, played alternately: A's first, B's first,
	// A's second, and so on. Each step ends in ReadyForQuery, so the one
	// server connection is free again when the other client's turn comes.
	stepsA := []step{
		sync1(parse("s1", "SELECT 1 AS a")),
		sync1(bind("", "s1"), execute("", 0)),
		sync1(describeStmt("s1")),
		sync1(closeStmt("s1"), parse("s1", "SELECT 'a2'::text AS a2"), bind("", "s1"), execute("", 0)),
		sync1(parse("s2", "SELECT $1 AS p", oidInt4), describeStmt("s2"), bind("", "s2", txt("7")), execute("", 0)),
		simple("PREPARE q1 AS SELECT 'A' AS who"),
		simple("EXECUTE q1"),
		sync1(parse("", "SELECT 'unnamed A'")),
		sync1(bind("", ""), execute("", 0)),
		sync1(bind("", "s1"), execute("", 0)),
		simple("DEALLOCATE q1"),
		simple("EXECUTE q1"),
		// Both clients prepare the same text under the same name (one
		// statement on the server); A's Close must not close B's.
		sync1(parse("s3", "SELECT 3 AS same")),
		sync1(closeStmt("s3")),
		sync1(bind("", "s3"), execute("", 0)),
	}
	stepsB := []step{
		sync1(parse("s1", "SELECT 2 AS b")),
		sync1(bind("", "s1"), execute("", 0)),
		sync1(describeStmt("s1")),
		sync1(bind("", "s1"), execute("", 0)),
		sync1(parse("s2", "SELECT $1 AS p", oidText), describeStmt("s2"), bind("", "s2", txt("x")), execute("", 0)),
		simple("PREPARE q1 AS SELECT 'B' AS who"),
		simple("EXECUTE q1"),
		sync1(parse("", "SELECT 'unnamed B'")),
		sync1(bind("", ""), execute("", 0)),
		sync1(bind("", "s1"), execute("", 0)),
		simple("EXECUTE q1"),
		sync1(bind("", "s2", txt("y")), execute("", 0)),
		sync1(parse("s3", "SELECT 3 AS same")),
		sync1(bind("", "s3"), execute("", 0)),
		sync1(bind("", "s3"), execute("", 0)),
	}

	play := func(t *testing.T, addrA, addrB string) (gotA, gotB []string) {
		t.Helper()
		a, _, err := dialRaw(addrA, nil)
		if err != nil {
			t.Fatalf("client A: %v", err)
		}
		defer a.close()
		b, _, err := dialRaw(addrB, nil)
		if err != nil {
			t.Fatalf("client B: %v", err)
		}
		defer b.close()
		for i := range max(len(stepsA), len(stepsB)) {
			if i < len(stepsA) {
				gotA = append(gotA, "-- A step "+strconv.Itoa(i+1)+": "+describeStep(stepsA[i]))
				gotA = append(gotA, a.run(stepsA[i])...)
			}
			if i < len(stepsB) {
				gotB = append(gotB, "-- B step "+strconv.Itoa(i+1)+": "+describeStep(stepsB[i]))
				gotB = append(gotB, b.run(stepsB[i])...)
			}
		}
		if *showTranscripts {
			t.Logf("client A:\n%s\nclient B:\n%s", strings.Join(gotA, "\n"), strings.Join(gotB, "\n"))
		}
		return gotA, gotB
	}

	direct := primary().Addr()
	wantA, wantB := play(t, direct, direct)
	for _, tg := range []target{
		proxyTarget("transaction-pool-1", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 1
		}),
		proxyTarget("transaction-pool-1-fresh-server", func(c *config.Config) {
			c.Pool.Mode = config.PoolTransaction
			c.Pool.Size = 1
			c.Pool.ServerLifetime = time.Nanosecond
		}),
	} {
		t.Run(tg.name, func(t *testing.T) {
			addr := tg.addr(t)
			gotA, gotB := play(t, addr, addr)
			if d := diffLines(wantA, gotA); d != "" {
				t.Errorf("client A's answers differ from PostgreSQL's (- direct, + proxy):\n%s", d)
			}
			if d := diffLines(wantB, gotB); d != "" {
				t.Errorf("client B's answers differ from PostgreSQL's (- direct, + proxy):\n%s", d)
			}
		})
	}
}
