package catalog_test

// Snapshots built by hand: name resolution along a search_path, column
// lookup, and what NewSnapshot refuses.

import (
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/catalog"
)

func table(schema, name string, cols ...string) *catalog.Table {
	t := &catalog.Table{Schema: schema, Name: name, Kind: catalog.KindTable}
	for _, c := range cols {
		t.Columns = append(t.Columns, catalog.Column{Name: c, TypeOID: 20, BaseTypeOID: 20, TypeName: "bigint"})
	}
	return t
}

// testSnapshot is a database with:
//
//	public.accounts, app.accounts, alice.accounts   (tables)
//	public.orders                                   (table)
//	app.users                                       (view)
//	seqs.accounts                                   (a sequence: not described)
//	pg_catalog.pg_class                             (not described)
//	public.pg_class                                 (a user table shadowed by it)
//	"My Schema"."Mixed"                             (table)
func testSnapshot(t *testing.T) *catalog.Snapshot {
	t.Helper()
	users := table("app", "users", "id")
	users.Kind = catalog.KindView
	s, err := catalog.NewSnapshot(7, []*catalog.Table{
		table("public", "accounts", "id", "name"),
		table("app", "accounts", "id"),
		table("alice", "accounts", "id"),
		table("public", "orders", "id", "account_id"),
		users,
		table("public", "pg_class", "x"),
		table("My Schema", "Mixed", "Id"),
	}, []catalog.Name{
		{Schema: "seqs", Name: "accounts"},
		{Schema: "pg_catalog", Name: "pg_class"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestResolve(t *testing.T) {
	s := testSnapshot(t)
	for _, tc := range []struct {
		name       string
		path       []string
		user, rel  string
		wantSchema string // "" for not found
	}{
		{"first schema wins", []string{"public", "app"}, "", "accounts", "public"},
		{"order matters", []string{"app", "public"}, "", "accounts", "app"},
		{"skips schemas without it", []string{"app", "public"}, "", "orders", "public"},
		{"missing schema skipped", []string{"nosuch", "app"}, "", "accounts", "app"},
		{"$user expands", []string{"$user", "public"}, "alice", "accounts", "alice"},
		{"$user without its schema", []string{"$user", "public"}, "bob", "accounts", "public"},
		{"$user with no user", []string{"$user", "app"}, "", "accounts", "app"},
		{"$user is not a schema name", []string{"$user"}, "", "accounts", ""},
		{"a view resolves", []string{"public", "app"}, "", "users", "app"},
		{"not described shadows", []string{"seqs", "public"}, "", "accounts", ""},
		{"not described later does not", []string{"public", "seqs"}, "", "accounts", "public"},
		{"pg_catalog implicitly first", []string{"public"}, "", "pg_class", ""},
		{"pg_catalog listed last", []string{"public", "pg_catalog"}, "", "pg_class", "public"},
		{"pg_catalog listed first", []string{"pg_catalog", "public"}, "", "pg_class", ""},
		{"missing", []string{"public", "app"}, "", "nosuch", ""},
		{"empty path", nil, "", "accounts", ""},
		{"exact case", []string{"My Schema"}, "", "Mixed", "My Schema"},
		{"no case folding", []string{"My Schema"}, "", "mixed", ""},
		{"pg_temp is not seen", []string{"pg_temp", "public"}, "", "accounts", "public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := s.Resolve(tc.path, tc.user, tc.rel)
			switch {
			case tc.wantSchema == "" && ok:
				t.Fatalf("Resolve(%q, %q, %q) = %s, want not found", tc.path, tc.user, tc.rel, got.QualifiedName())
			case tc.wantSchema == "" && got != nil:
				t.Fatalf("Resolve(%q, %q, %q) = %s with ok false", tc.path, tc.user, tc.rel, got.QualifiedName())
			case tc.wantSchema != "" && !ok:
				t.Fatalf("Resolve(%q, %q, %q) found nothing, want %s", tc.path, tc.user, tc.rel, tc.wantSchema)
			case tc.wantSchema != "" && (got.Schema != tc.wantSchema || got.Name != tc.rel):
				t.Fatalf("Resolve(%q, %q, %q) = %s, want schema %s", tc.path, tc.user, tc.rel, got.QualifiedName(), tc.wantSchema)
			}
		})
	}
}

func TestResolveAllocs(t *testing.T) {
	s := testSnapshot(t)
	path := []string{"$user", "seqs", "public"}
	if n := testing.AllocsPerRun(100, func() { s.Resolve(path, "alice", "orders") }); n != 0 {
		t.Fatalf("Resolve allocates %v times", n)
	}
}

func TestTableLookups(t *testing.T) {
	s := testSnapshot(t)
	if s.Version() != 7 || s.Len() != 7 {
		t.Fatalf("version %d, len %d; want 7, 7", s.Version(), s.Len())
	}
	tb, ok := s.Table("public", "orders")
	if !ok {
		t.Fatal("public.orders not found")
	}
	c, i, ok := tb.Column("account_id")
	if !ok || i != 1 || c.Name != "account_id" || c.TypeName != "bigint" {
		t.Fatalf("Column(account_id) = %+v, %d, %v", c, i, ok)
	}
	if _, i, ok := tb.Column("nosuch"); ok || i != -1 {
		t.Fatalf("Column(nosuch) = %d, %v", i, ok)
	}
	if _, ok := s.Table("pg_catalog", "pg_class"); ok {
		t.Fatal("a relation that is not described is a table")
	}
	if _, ok := s.Table("public", "Accounts"); ok {
		t.Fatal("Table folds case")
	}
	var names []string
	for _, tb := range s.Tables() {
		names = append(names, tb.QualifiedName().String())
	}
	want := `"My Schema"."Mixed" alice.accounts app.accounts app.users public.accounts public.orders public.pg_class`
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("Tables() = %s\nwant       %s", got, want)
	}
}

func TestNewSnapshotCopies(t *testing.T) {
	in := table("public", "t", "a", "b")
	s, err := catalog.NewSnapshot(1, []*catalog.Table{in}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in.Name = "changed"
	in.Columns[0].Name = "changed"
	tb, ok := s.Table("public", "t")
	if !ok || tb.Columns[0].Name != "a" {
		t.Fatalf("the snapshot shares the caller's table: %+v, %v", tb, ok)
	}
}

func TestNewSnapshotRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tables []*catalog.Table
		others []catalog.Name
		want   string
	}{
		{"nil table", []*catalog.Table{nil}, nil, "nil table"},
		{"no schema", []*catalog.Table{table("", "t")}, nil, "empty schema"},
		{"no name", []*catalog.Table{table("s", "")}, nil, "empty schema"},
		{"twice", []*catalog.Table{table("s", "t"), table("s", "t")}, nil, "listed twice"},
		{"column twice", []*catalog.Table{table("s", "t", "a", "b", "a")}, nil, `column "a" listed twice`},
		{"column without name", []*catalog.Table{table("s", "t", "a", "")}, nil, "column 2 has no name"},
		{"kind", []*catalog.Table{{Schema: "s", Name: "t", Kind: 'S'}}, nil, `relkind 'S'`},
		{"other is a table", []*catalog.Table{table("s", "t")}, []catalog.Name{{Schema: "s", Name: "t"}}, "also a described table"},
		{"other without name", nil, []catalog.Name{{Schema: "s"}}, "empty schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.NewSnapshot(1, tc.tables, tc.others)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSnapshot: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNameString(t *testing.T) {
	for in, want := range map[catalog.Name]string{
		{Schema: "public", Name: "t1"}:          "public.t1",
		{Schema: "My Schema", Name: `a"b`}:      `"My Schema"."a""b"`,
		{Schema: "Upper", Name: "_x$"}:          `"Upper"._x$`,
		{Schema: "1abc", Name: ""}:              `"1abc".""`,
		{Schema: "\u00e9t\u00e9", Name: "ok_1"}: `"été".ok_1`,
	} {
		if got := in.String(); got != want {
			t.Errorf("%#v.String() = %s, want %s", in, got, want)
		}
	}
}
