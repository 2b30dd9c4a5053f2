package drivers_test

// psycopg2 and SQLAlchemy through the proxy, run by Debian's python3 (not
// whichever python3 is first on the PATH, which may lack Debian's
// packages): python/psycopg2_driver.py and python/sqlalchemy_orm.py print
// what they saw; these tests check it against PostgreSQL's answers, and
// the tables and notifications they leave.

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/test/testenv"
)

// debianPython is the interpreter python3-psycopg2 and python3-sqlalchemy
// install into.
const debianPython = "/usr/bin/python3"

// requirePython fails the test unless Debian's python3 can import module,
// naming the Debian package that brings it.
func requirePython(t *testing.T, ctx context.Context, module, debianPackage string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, debianPython, "-I", "-B", "-c", "import "+module).CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import %s: install Debian's %s (scripts/deps.sh test does): %v\n%s",
			debianPython, module, debianPackage, err, strings.TrimSpace(string(out)))
	}
}

// runPython runs a script of python/ with Debian's python3, isolated from
// the environment's PYTHON* variables and the user's site-packages.
func runPython(t *testing.T, ctx context.Context, script string, args ...string) map[string]json.RawMessage {
	t.Helper()
	return runScript(t, ctx, "python", debianPython, append([]string{"-I", "-B", script}, args...)...)
}

func TestPsycopg2(t *testing.T) {
	ctx := testenv.TestCtx(t, 2*time.Minute)
	requirePython(t, ctx, "psycopg2", "python3-psycopg2")
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			items, copies := "py_items_"+tg.name, "py_copy_"+tg.name
			super := prepare(t, ctx, items, copies)
			listener := listen(t, ctx, "drivers_py")
			url := tg.url(t)
			most := watchServerConns(t, ctx)
			s := runPython(t, ctx, "psycopg2_driver.py", url, tg.name)
			t.Logf("psycopg2 %s (libpq %s), server %s", version(s, "psycopg2"), version(s, "libpq"), version(s, "server_version"))
			tg.checkServerConns(t, most())

			// Ids 1, 2..201 (executemany) and 1000..1999 (execute_values);
			// then 7000 by two-phase commit.
			const rows, idSum = 1201, 1 + (2+201)*200/2 + (1000+1999)*1000/2
			want := map[string]any{
				"roundtrip_equal":         true,
				"executemany_rowcount":    200,
				"count_before_rollback":   rows + 1,
				"count_after_rollback":    rows,
				"tpc":                     []any{1, 1, []int{7000}},
				"name_after_rollback":     `O'Reilly \ "quoted" ; -- not a comment`,
				"named_cursor_rows":       rows,
				"named_cursor_id_sum":     idSum,
				"interleaved_cursor_rows": 200,
				"interleaved_cursor_sum":  0,
				"open_cursors":            2,
				"withhold_code":           tg.sessionOnly(""),
				"copy_in_rowcount":        3000,
				"copy_out_rowcount":       3000,
				"copy_roundtrip_equal":    true,
				"copy_bad_code":           "22P02",
				"copy_rows_after_bad":     3000,
				"div_zero_code":           "22012",
				"aborted_code":            "25P02",
				"after_error":             42,
				"settings_mismatches":     []string{},
				"readonly_write_code":     "25006",
				"set_local_timezone":      []string{"Asia/Kolkata", "UTC"},
				"cancel_code":             "57014",
				"cancel_fast":             true,
				"after_cancel":            "usable",
				"notices":                 []string{"NOTICE:  hello 42"},
				"big_param_length":        2<<20 + 1,
				"listen_code":             tg.sessionOnly(""),
				"reuse_state": map[string]any{"application_name": "", "statement_timeout": "0", "execute_prepared": "26000",
					"temp_table": false, "listening": 0, "advisory_locks": 0, "cursors": 0},
			}
			if tg.name != config.PoolTransaction {
				want["withhold_rows"] = 10
				want["listen_payloads"] = []string{"hello"}
			}
			checkSummary(t, s, want)
			t.Logf("the next client had the same backend: %s", s["reuse_same_backend"])
			if t.Failed() {
				t.Logf("the round trip read back %s", s["roundtrip_row"])
			}

			// Amounts in cents: row 1's 1234.56; i/4 for 2..201, doubled by
			// execute_batch; i for 1000..1999.
			const cents = 123456 + (2+201)*200/2*50 + (1000+1999)*1000/2*100
			got := queryInts(t, ctx, super, `select count(*), sum(id), (sum(amount) * 100)::int8,
				count(*) filter (where id = 1 and doc is not null and tags[2] = 'b,c') from `+items)
			if want := []int64{rows + 1, idSum + 7000, cents, 1}; !slices.Equal(got, want) {
				t.Errorf("%s: rows, sum of ids, sum of amounts in cents, full row 1: %d, want %d", items, got, want)
			}
			got = queryInts(t, ctx, super, "select count(*), count(*) filter (where note is null), count(*) filter (where note like '%\n%') from "+copies)
			if got[0] != 3000 || got[1] != 600 || got[2] != 2400 {
				t.Errorf("%s has %d rows, %d null notes, %d notes with a newline; want 3000, 600, 2400", copies, got[0], got[1], got[2])
			}
			expectNotifications(t, ctx, listener, "drivers_py", "from psycopg2 "+tg.name, "pg_notify "+tg.name)
		})
	}
}

func TestSQLAlchemy(t *testing.T) {
	ctx := testenv.TestCtx(t, 2*time.Minute)
	requirePython(t, ctx, "psycopg2", "python3-psycopg2")
	requirePython(t, ctx, "sqlalchemy", "python3-sqlalchemy")
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			authors, books := "sa_authors_"+tg.name, "sa_books_"+tg.name
			super := prepare(t, ctx, books, authors)
			url := tg.url(t)
			most := watchServerConns(t, ctx)
			s := runPython(t, ctx, "sqlalchemy_orm.py", url, tg.name)
			t.Logf("SQLAlchemy %s", version(s, "sqlalchemy"))
			tg.checkServerConns(t, most())
			checkSummary(t, s, map[string]any{
				"reflected_tables":             []string{authors, books},
				"reflected_book_columns":       []string{"id", "author_id", "title", "year", "price"},
				"core_books_after_1950":        49,
				"core_join":                    [][]any{{"author 3", 10}, {"author 7", 10}},
				"core_text_param":              "book 42",
				"core_update_returning":        []int{1900, 1901, 1902},
				"core_books_after_rollback":    100,
				"core_authors_after_savepoint": []string{"kept"},
				"isolation_serializable":       "serializable",
				"isolation_default":            "read committed",
				"autocommit_in_transaction":    true,
				"orm_author_id_assigned":       true,
				"orm_born":                     "1929-10-21",
				"orm_filtered_titles":          []string{"A Wizard of Earthsea"},
				"orm_legacy_query_count":       23, // 1960..1980: 21 of Core's and two
				"orm_relationship_titles":      []string{"A Wizard of Earthsea", "The Dispossessed"},
				"orm_name_after_rollback":      "Ursula K. Le Guin",
				"orm_pending_after_rollback":   0,
				"orm_duplicate_code":           "23505",
				"orm_price_after_commit":       "13.00",
			})

			got := queryInts(t, ctx, super, "select (select count(*) from "+authors+"), (select count(*) from "+books+
				"), (select sum(price)::int8 from "+books+")")
			// 10 authors, "kept" and Le Guin; 100 books (prices 0..99,
			// 100 added to three) and Le Guin's two at 9.50 and 13.
			if want := []int64{12, 102, 4950 + 300 + 23}; !slices.Equal(got, want) {
				t.Errorf("authors, books, sum of prices: %d, want %d", got, want)
			}
		})
	}
}
