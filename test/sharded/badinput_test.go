package sharded_test

// Bad input gets PostgreSQL's own answer through the proxy: a syntax error
// has direct's SQLSTATE, message and cursor position (a client underlines
// the error with it), a key literal of the wrong type gives 22P02 as on
// direct, not a routing failure. And a shape the proxy cannot run exactly
// across shards is refused with 0A000 and a hint saying what to do.

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestBadInput(t *testing.T) {
	direct, proxy := newSide("direct", directURL), newSide(proxyName, proxyURL)
	defer direct.close()
	defer proxy.close()
	cases := []struct{ code, sql string }{
		{"42601", `SELEC id FROM customers`},
		{"42601", `SELECT id FROM customers WHERE`},
		{"42601", `SELECT id, FROM customers WHERE id = 1`},
		{"42601", `SELECT * FROM customers WHERE id = 1 ORDER`},
		{"42601", `SELECT 'unterminated FROM customers WHERE id = 1`},
		{"42601", `SELECT * FROM customers WHERE id IN ()`},
		{"42601", `UPDATE wallets SET WHERE id = 1`},
		{"42601", `INSERT INTO wallets (id) VALUES (1`},
		{"22P02", `SELECT * FROM customers WHERE id = 'abc'`},
		{"22P02", `SELECT * FROM orders WHERE customer_id IN (1, 'x')`},
		{"22P02", `DELETE FROM wallets WHERE id = 'abc'`},
		{"22P02", `INSERT INTO wallets (id) VALUES ('abc')`},
		{"22003", `SELECT * FROM customers WHERE id = '99999999999999999999'`},
		{"42883", `SELECT * FROM sessions WHERE token = 1`},
		{"42703", `SELECT nosuchcolumn FROM customers WHERE id = 1`},
		{"42P01", `SELECT * FROM nosuchtable WHERE id = 1`},
	}
	for _, c := range cases {
		for _, m := range modes {
			q := query{cat: "bad", sql: c.sql}
			d, p := direct.run(m, q), proxy.run(m, q)
			if d.code() != c.code {
				t.Errorf("%s protocol: %s\n    direct gave %s, the case expects %s: the case is wrong", m.name, c.sql, describe(d), c.code)
				continue
			}
			if diff := compareErrors(d.err, p.err, proxyName); diff != "" {
				t.Errorf("%s protocol: %s\n    %s", m.name, c.sql, diff)
			}
		}
	}

	// Valid SQL that no one shard can answer: sessions is sharded by
	// token, so its customer_id rows are anywhere; orders joined on a column
	// that is not its key.
	for _, sql := range []string{
		`SELECT c.id, s.token FROM customers c JOIN sessions s ON s.customer_id = c.id`,
		`SELECT o.order_id, c.name FROM orders o JOIN customers c ON c.id = o.order_id`,
	} {
		q := query{cat: "bad", sql: sql}
		if d := direct.run(extended, q); d.err != nil {
			t.Errorf("%s\n    fails on direct: %v", sql, d.err)
			continue
		}
		if selfCheck {
			continue
		}
		for _, m := range modes {
			p := proxy.run(m, q)
			var pe *pgconn.PgError
			errors.As(p.err, &pe)
			switch {
			case !p.refused():
				t.Errorf("%s protocol: %s\n    want 0A000 with a hint, got %s", m.name, sql, describe(p))
			case pe == nil || pe.Hint == "":
				t.Errorf("%s protocol: %s\n    refused without a hint: %v", m.name, sql, p.err)
			}
		}
	}
}
