package catalog_test

// Name resolution and search_path parsing compared with the server itself:
// for each search_path, the relation PostgreSQL's to_regclass finds must be
// the one Resolve returns (or, when the server finds a relation the
// snapshot does not describe, Resolve must find nothing); and the server
// must accept exactly the settings ParseSearchPath accepts, searching the
// schemas it returns.

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/catalog"
	"github.com/shardproxy/shardproxy/test/testenv"
)

func TestResolveMatchesServer(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	conn := connect(t, ctx)
	snap, err := catalog.Load(ctx, conn, 1)
	if err != nil {
		t.Fatal(err)
	}
	byOID := map[uint32]*catalog.Table{}
	for _, tb := range snap.Tables() {
		byOID[tb.OID] = tb
	}

	settings := []string{
		`"$user", public`,
		`"$user", cat_a`,
		`cat_a`,
		`CAT_A`,
		`cat_s, cat_a`,
		`cat_s, "Cat B"`,
		`"Cat B", cat_a`,
		`cat_a, "Cat B"`,
		`cat_a, pg_catalog`,
		`pg_catalog, cat_a`,
		`nosuch, "Cat B"`,
		`a_schema_name_of_exactly_sixty_three_bytes_xxxxxxxxxxxxxxxxxxxx_and_more, cat_a`,
		`""`,
		``,
	}
	names := []string{"accounts", "Order Items", "pg_class", "pg_type", "empty", "v", "mv",
		"parted", "parted_0", "remote", "t", "explicit_seq", "nosuch", "Accounts"}

	var user string
	if err := conn.QueryRow(ctx, "select current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	for _, setting := range settings {
		if _, err := conn.Exec(ctx, "select set_config('search_path', $1, false)", setting); err != nil {
			t.Fatalf("setting search_path to %q: %v", setting, err)
		}
		// What the proxy sees: the server's text of the setting.
		var shown string
		if err := conn.QueryRow(ctx, "show search_path").Scan(&shown); err != nil {
			t.Fatal(err)
		}
		path, err := catalog.ParseSearchPath(shown)
		if err != nil {
			t.Fatalf("ParseSearchPath(%q): %v", shown, err)
		}
		for _, name := range names {
			var serverOID *uint32
			if err := conn.QueryRow(ctx, "select to_regclass(quote_ident($1))::oid", name).Scan(&serverOID); err != nil {
				t.Fatal(err)
			}
			got, ok := snap.Resolve(path, user, name)
			var want *catalog.Table
			if serverOID != nil {
				want = byOID[*serverOID]
			}
			switch {
			case want == nil && ok:
				t.Errorf("search_path %s: Resolve(%q) = %s; the server finds a relation not described (oid %d)",
					shown, name, got.QualifiedName(), *serverOID)
			case want != nil && !ok:
				t.Errorf("search_path %s: Resolve(%q) found nothing; the server finds %s", shown, name, want.QualifiedName())
			case want != nil && got != want:
				t.Errorf("search_path %s: Resolve(%q) = %s; the server finds %s", shown, name, got.QualifiedName(), want.QualifiedName())
			}
		}
	}
}

// TestParseSearchPathMatchesServer sets each value with set_config: the
// server must refuse exactly the values ParseSearchPath refuses, and for the
// others search the existing schemas among the names it returns, in order,
// without repeats ("$user" standing for the current user's schema).
func TestParseSearchPathMatchesServer(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	conn := connect(t, ctx)
	var user string
	if err := conn.QueryRow(ctx, "select current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	existing := map[string]bool{}
	rows, err := conn.Query(ctx, "select nspname::text from pg_namespace")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		existing[n] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	long := "a_schema_name_of_exactly_sixty_three_bytes_xxxxxxxxxxxxxxxxxxxx"
	for _, setting := range []string{
		// accepted
		`"$user", public`, `$user,cat_a`, `a,b`, `"Quoted Schema", x`, ``, " \t\n\r\f ",
		`  cat_a ,"Cat B"  `, "cat_a\t,\n\"Cat B\"", `CAT_A, "cat_a", "CAT_A"`, `cat_a, cat_a`,
		long + "_and_more", `"` + long + `_and_more"`, `a"b`, `"a""b", "c"""`, `"a,b",c`, `""`,
		"a\v", `pg_catalog, cat_a`, `cat_a, pg_catalog, "Cat B"`, `nosuch, cat_s`,
		// refused
		`a,,b`, `a,`, `,a`, `a, `, `,`, `a b`, `"a" b`, `"a"""b`, `"unterminated`, `a, "b`, "a \v",
	} {
		t.Run(setting, func(t *testing.T) {
			names, parseErr := catalog.ParseSearchPath(setting)
			_, setErr := conn.Exec(ctx, "select set_config('search_path', $1, false)", setting)
			switch {
			case parseErr != nil && setErr == nil:
				t.Fatalf("ParseSearchPath refuses %q (%v); the server accepts it", setting, parseErr)
			case parseErr == nil && setErr != nil:
				t.Fatalf("ParseSearchPath(%q) = %q; the server refuses it: %v", setting, names, setErr)
			case parseErr != nil:
				testenv.RequireCode(t, setErr, "22023")
				if !errors.Is(parseErr, catalog.ErrSearchPathSyntax) {
					t.Fatalf("error %v does not wrap ErrSearchPathSyntax", parseErr)
				}
				return
			}
			var want []string
			for _, n := range names {
				if n == "$user" {
					n = user
				}
				if existing[n] && !slices.Contains(want, n) {
					want = append(want, n)
				}
			}
			var got []string
			if err := conn.QueryRow(ctx, "select current_schemas(false)::text[]").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("setting %q: the server searches %q; ParseSearchPath gives %q, of which existing %q",
					setting, got, names, want)
			}
		})
	}
	if _, err := conn.Exec(ctx, "reset search_path"); err != nil {
		t.Fatal(err)
	}
}
