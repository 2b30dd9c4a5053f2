package catalog_test

// Load against the fixture of main_test.go, compared field by field with
// what the fixture's DDL must produce.

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/catalog"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// Type OIDs of the built-in types in the fixture (pg_type.dat).
const (
	int4OID      = 23
	int8OID      = 20
	textOID      = 25
	uuidOID      = 2950
	numericOID   = 1700
	varcharOID   = 1043
	int4ArrayOID = 1007
)

func oidOf(t *testing.T, ctx context.Context, conn *pgx.Conn, query string, args ...any) uint32 {
	t.Helper()
	var oid uint32
	if err := conn.QueryRow(ctx, query, args...).Scan(&oid); err != nil {
		t.Fatalf("%s %v: %v", query, args, err)
	}
	return oid
}

func relOID(t *testing.T, ctx context.Context, conn *pgx.Conn, schema, name string) uint32 {
	t.Helper()
	return oidOf(t, ctx, conn, `select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = $1 and c.relname = $2`, schema, name)
}

func TestLoad(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	conn := connect(t, ctx)
	// A temporary table is this session's only; Load must not report it
	// (nor its pg_temp_N schema).
	if _, err := conn.Exec(ctx, "create temp table cat_tmp (a int); create temp table accounts (a int)"); err != nil {
		t.Fatal(err)
	}

	snap, err := catalog.Load(ctx, conn, 42)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version() != 42 {
		t.Fatalf("version %d, want 42", snap.Version())
	}

	domOID := oidOf(t, ctx, conn, "select 'cat_a.acct_pos'::regtype::oid")
	col := func(name string, typ uint32, typeName string) catalog.Column {
		return catalog.Column{Name: name, TypeOID: typ, BaseTypeOID: typ, TypeName: typeName}
	}
	notNull := func(c catalog.Column) catalog.Column { c.NotNull = true; return c }
	withDefault := func(c catalog.Column) catalog.Column { c.HasDefault = true; return c }
	serial := func(c catalog.Column) catalog.Column { c.NotNull, c.HasDefault, c.Serial = true, true, true; return c }
	identity := func(c catalog.Column) catalog.Column { c.NotNull, c.Identity = true, true; return c }
	dom := col("dom", domOID, "cat_a.acct_pos")
	dom.BaseTypeOID = int8OID
	nv := withDefault(col("nv", int8OID, "bigint"))
	nv.Serial = true // an explicit nextval default counts as serial
	gen := col("gen", int8OID, "bigint")
	gen.Generated = true

	rel := func(schema, name string, kind catalog.Kind, cols ...catalog.Column) *catalog.Table {
		return &catalog.Table{Schema: schema, Name: name, OID: relOID(t, ctx, conn, schema, name), Kind: kind, Columns: cols}
	}
	want := []*catalog.Table{
		rel("Cat B", "Order Items", catalog.KindTable, col("Id", int4OID, "integer"), col(`x "y"`, textOID, "text")),
		rel("Cat B", "accounts", catalog.KindTable, col("id", int4OID, "integer")),
		rel("cat_a", "accounts", catalog.KindTable,
			notNull(col("id", int8OID, "bigint")),
			// gone was here: dropped, so small is the second column.
			withDefault(notNull(col("small", int4OID, "integer"))),
			withDefault(notNull(col("name", textOID, "text"))),
			col("u", uuidOID, "uuid"),
			col("amount", numericOID, "numeric(10,2)"),
			serial(col("s", int4OID, "integer")),
			serial(col("bs", int8OID, "bigint")),
			identity(col("ida", int8OID, "bigint")),
			identity(col("idd", int4OID, "integer")),
			col("Mixed Case", varcharOID, "character varying(20)"),
			gen,
			dom,
			nv,
			// gone2 was here; added came after both drops.
			col("added", int4ArrayOID, "integer[]"),
		),
		rel("cat_a", "empty", catalog.KindTable),
		rel("cat_a", "mv", catalog.KindMatView, col("one", int4OID, "integer")),
		rel("cat_a", "parted", catalog.KindPartitioned, notNull(col("k", int8OID, "bigint")), col("v", textOID, "text")),
		rel("cat_a", "parted_0", catalog.KindTable, notNull(col("k", int8OID, "bigint")), col("v", textOID, "text")),
		rel("cat_a", "pg_class", catalog.KindTable, col("x", int4OID, "integer")),
		rel("cat_a", "remote", catalog.KindForeign, col("r", int4OID, "integer")),
		rel("cat_a", "v", catalog.KindView, col("id", int8OID, "bigint"), col("name", textOID, "text")),
	}

	var got []*catalog.Table
	for _, tb := range snap.Tables() {
		switch {
		case tb.Schema == "cat_a" || tb.Schema == "Cat B":
			got = append(got, tb)
		case tb.Schema == "pg_catalog" || tb.Schema == "information_schema" || strings.HasPrefix(tb.Schema, "pg_"):
			t.Errorf("Load described %s", tb.QualifiedName())
		case tb.Name == "cat_tmp":
			t.Errorf("Load described the temporary table %s", tb.QualifiedName())
		}
	}
	if len(got) != len(want) {
		t.Errorf("Load described %d tables in cat_a and \"Cat B\", want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Errorf("missing %s", want[i].QualifiedName())
		case i >= len(want):
			t.Errorf("unexpected %s", got[i].QualifiedName())
		case !reflect.DeepEqual(got[i], want[i]):
			t.Errorf("%s:\n%s", want[i].QualifiedName(), diffTable(got[i], want[i]))
		}
	}

	// Table.Column gives the INSERT position, which skips dropped columns.
	accounts, ok := snap.Table("cat_a", "accounts")
	if !ok {
		t.Fatal("cat_a.accounts not described")
	}
	if c, i, ok := accounts.Column("small"); !ok || i != 1 || c.TypeOID != int4OID {
		t.Errorf(`Column("small") = %+v, %d, %v; want position 1`, c, i, ok)
	}
	if _, _, ok := accounts.Column("gone"); ok {
		t.Error("a dropped column is listed")
	}
	// Not described: a sequence, an index, pg_catalog's tables.
	for _, n := range []catalog.Name{
		{Schema: "cat_s", Name: "accounts"}, {Schema: "cat_s", Name: "Order Items"}, {Schema: "pg_catalog", Name: "pg_class"},
	} {
		if _, ok := snap.Table(n.Schema, n.Name); ok {
			t.Errorf("%s is described", n)
		}
	}
	if _, ok := snap.Table("cat_s", "t"); !ok {
		t.Error("cat_s.t is not described")
	}
}

// diffTable lists the fields in which got differs from want.
func diffTable(got, want *catalog.Table) string {
	var b strings.Builder
	if got.Schema != want.Schema || got.Name != want.Name || got.OID != want.OID || got.Kind != want.Kind {
		fmt.Fprintf(&b, "  got  %s oid %d %s\n  want %s oid %d %s\n",
			got.QualifiedName(), got.OID, got.Kind, want.QualifiedName(), want.OID, want.Kind)
	}
	for i := range max(len(got.Columns), len(want.Columns)) {
		var g, w catalog.Column
		if i < len(got.Columns) {
			g = got.Columns[i]
		}
		if i < len(want.Columns) {
			w = want.Columns[i]
		}
		if g != w {
			fmt.Fprintf(&b, "  column %d\n    got  %+v\n    want %+v\n", i, g, w)
		}
	}
	if b.Len() == 0 {
		fmt.Fprintf(&b, "  got  %#v\n  want %#v\n", got, want) // nil versus empty Columns
	}
	return b.String()
}
