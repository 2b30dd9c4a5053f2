package clients_test

// psql through the proxy: its catalog queries (\d, \d+) must print exactly
// what they print against the primary, and \copy must work both ways.

import (
	"github.com/shardproxy/shardproxy/test/testenv"

	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// psql runs the psql binary with args against url and returns its stdout.
func psql(t *testing.T, ctx context.Context, url string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "psql", append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-d", url}, args...)...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PAGER=", "PSQL_PAGER=", "LC_ALL=C.UTF-8", "COLUMNS=200")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("psql %s: %v\nstderr: %s\nstdout: %s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String()
}

func TestPsqlDescribe(t *testing.T) {
	n := startNode(t, nil)
	ctx := testenv.TestCtx(t, 60*time.Second)
	direct := testenv.Connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, `drop table if exists psql_items cascade;
		create table psql_items (
			id bigint generated always as identity primary key,
			name text not null default 'x',
			price numeric(10,2) check (price >= 0),
			created timestamptz default now(),
			tags text[],
			unique (name, price));
		create index psql_items_created on psql_items (created desc) where price > 0;
		comment on table psql_items is 'items for psql';
		comment on column psql_items.name is 'the name';
		create or replace view psql_items_view as select id, name from psql_items`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-c", `\d`},
		{"-c", `\d psql_items`},
		{"-c", `\d+ psql_items`},
		{"-c", `\d+ psql_items_view`},
		{"-c", `\dt+ psql_items`},
		{"-c", `\di psql_items*`},
	} {
		t.Run(args[1], func(t *testing.T) {
			want := psql(t, ctx, directURL(), args...)
			got := psql(t, ctx, proxyURL(n), args...)
			if got != want {
				t.Errorf("through the proxy:\n%s\ndirectly:\n%s", got, want)
			}
			if !strings.Contains(got, "psql_items") {
				t.Errorf("output does not mention the table:\n%s", got)
			}
		})
	}
}

func TestPsqlCopy(t *testing.T) {
	n := startNode(t, nil)
	ctx := testenv.TestCtx(t, 60*time.Second)
	direct := testenv.Connect(t, ctx, directURL())
	if _, err := direct.Exec(ctx, `drop table if exists psql_copy;
		create table psql_copy (id int primary key, name text, note text)`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	var csv strings.Builder
	for i := range 5000 {
		note := `"with ""quotes"", and commas"`
		if i%7 == 0 {
			note = "" // NULL in CSV
		}
		csv.WriteString(strings.Join([]string{strconv.Itoa(i), "name " + strconv.Itoa(i), note}, ",") + "\n")
	}
	if err := os.WriteFile(in, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := psql(t, ctx, proxyURL(n), "-c", `\copy psql_copy from '`+in+`' csv`)
	if strings.TrimSpace(out) != "COPY 5000" {
		t.Fatalf("\\copy from printed %q", out)
	}
	var count, nulls int
	if err := direct.QueryRow(ctx, "select count(*), count(*) filter (where note is null) from psql_copy").Scan(&count, &nulls); err != nil {
		t.Fatal(err)
	}
	if count != 5000 || nulls != 715 {
		t.Fatalf("table has %d rows, %d null notes; want 5000, 715", count, nulls)
	}

	outFile := filepath.Join(dir, "out.csv")
	out = psql(t, ctx, proxyURL(n), "-c", `\copy (select * from psql_copy order by id) to '`+outFile+`' csv`)
	if strings.TrimSpace(out) != "COPY 5000" {
		t.Fatalf("\\copy to printed %q", out)
	}
	got, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != csv.String() {
		t.Fatalf("\\copy to wrote something else than \\copy from read (%d vs %d bytes)", len(got), csv.Len())
	}
	// Both directions in one session, then an ordinary query on it.
	out = psql(t, ctx, proxyURL(n), "-At",
		"-c", `\copy (select id from psql_copy where id < 3 order by id) to '`+outFile+`' csv`,
		"-c", `\copy psql_copy from program 'echo 9999,last,' csv`,
		"-c", "select count(*) from psql_copy")
	if out != "COPY 3\nCOPY 1\n5001\n" {
		t.Fatalf("copy out, copy in, select in one session printed %q", out)
	}
}
