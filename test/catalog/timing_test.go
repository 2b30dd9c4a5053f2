package catalog_test

// What Load costs on a database of about 200 tables: logged by
// TestLoadTiming (go test -v) and measured by BenchmarkLoad. Speed is never
// asserted here (DESIGN.md section 10).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/catalog"
	"github.com/shardproxy/shardproxy/test/testenv"
)

const bulkTables = 200

// createBulk adds schema cat_bulk with bulkTables tables of eight columns
// each (a bigserial key, a default, a numeric, a uuid, a varchar), the
// shape of an application schema, and drops it at cleanup.
func createBulk(tb testing.TB, ctx context.Context) {
	tb.Helper()
	conn := connect(tb, ctx)
	var b strings.Builder
	b.WriteString("create schema cat_bulk;\n")
	for i := range bulkTables {
		fmt.Fprintf(&b, `create table cat_bulk.t%03d (
			id bigserial primary key, account_id bigint not null, name text,
			amount numeric(10,2), u uuid, created timestamptz not null default now(),
			flag boolean, note varchar(100));
`, i)
	}
	if _, err := conn.Exec(ctx, b.String()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := conn.Exec(ctx, "drop schema cat_bulk cascade"); err != nil {
			tb.Errorf("dropping cat_bulk: %v", err)
		}
	})
}

func TestLoadTiming(t *testing.T) {
	ctx := testenv.TestCtx(t, 2*time.Minute)
	createBulk(t, ctx)

	// The first Load on a new connection also prepares the statement and
	// fills the new backend's catalog caches.
	conn := connect(t, ctx)
	start := time.Now()
	snap, err := catalog.Load(ctx, conn, 1)
	first := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	cols := 0
	for _, tb := range snap.Tables() {
		cols += len(tb.Columns)
	}
	if snap.Len() < bulkTables {
		t.Fatalf("Load described %d tables, want at least %d", snap.Len(), bulkTables)
	}

	const runs = 30
	times := make([]time.Duration, runs)
	for i := range times {
		start := time.Now()
		if _, err := catalog.Load(ctx, conn, uint64(i)); err != nil {
			t.Fatal(err)
		}
		times[i] = time.Since(start)
	}
	slices.Sort(times)
	t.Logf("Load of %d tables, %d columns: first on a new connection %v; then over %d runs min %v, median %v, max %v",
		snap.Len(), cols, first.Round(time.Microsecond), runs,
		times[0].Round(time.Microsecond), times[runs/2].Round(time.Microsecond), times[runs-1].Round(time.Microsecond))
}

func BenchmarkLoad(b *testing.B) {
	ctx := testenv.TestCtx(b, 5*time.Minute)
	createBulk(b, ctx)
	conn := connect(b, ctx)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := catalog.Load(ctx, conn, 1); err != nil {
			b.Fatal(err)
		}
	}
}
