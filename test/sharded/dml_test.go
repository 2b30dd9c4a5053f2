package sharded_test

// DML through the proxy against the same DML on direct: single-row and
// multi-row INSERTs (a multi-row one is split over shards), UPDATE and
// DELETE by key and without key, RETURNING, ON CONFLICT, reference-table and
// unsharded writes, explicit transactions over several shards. Command
// tags must match (`UPDATE 3` is how an application knows what happened)
// and RETURNING rows must match as multisets. An UPDATE that would move a
// row's key to another shard must be refused with 0A000; such a step runs
// only through the proxy, since direct would apply it and the two sides
// would part. At the end, the written tables must be equal on both sides.
//
// Each step runs through the proxy first: a step the proxy may refuse
// (a key update that stays on its shard, which the design allows but does
// not require) is then left out on direct too.

import (
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/keyspace"
)

type dmlStep struct {
	sql  string
	args []any
	m    protoMode
	// want is the command tag direct must give: a check of the step
	// itself, so that a step that silently matches nothing is noticed.
	want string
	// moves: the statement moves a key to another shard; the proxy must
	// refuse it with 0A000 and direct does not run it.
	moves bool
	// mayRefuse: the proxy may refuse it with 0A000.
	mayRefuse bool
}

// shardOf is the index in proxyShards of the shard owning an integer key
// in the initial map.
func shardOf(key int64) int {
	id := keyspace.Int(key)
	for i, r := range keyspace.Split(len(proxyShards)) {
		if r.Contains(id) {
			return i
		}
	}
	panic("keyspace.Split does not cover the keyspace")
}

// keyFrom is the first key from start up whose shard is (same) or is not
// (!same) the shard of key.
func keyFrom(start, key int64, same bool) int64 {
	for k := start; ; k++ {
		if (shardOf(k) == shardOf(key)) == same {
			return k
		}
	}
}

func dmlSteps() []dmlStep {
	e, s := extended, simple
	step := func(m protoMode, want, sql string, args ...any) dmlStep {
		return dmlStep{sql: sql, args: args, m: m, want: want}
	}
	return []dmlStep{
		step(e, "INSERT 0 1", `INSERT INTO wallets (id, owner, amount) VALUES (1001, 'new-1', 10.50)`),
		step(s, "INSERT 0 1", `INSERT INTO wallets (id, owner, amount) VALUES (1002, 'new-2', 0) RETURNING *`),
		step(s, "INSERT 0 12", `INSERT INTO wallets (id, owner, amount) VALUES (2001, 'm', 1), (2002, 'm', 2),
			(2003, 'm', 3), (2004, 'm', 4), (2005, NULL, 5), (2006, 'm', 6), (2007, 'm', 7), (2008, 'm', 8),
			(-2001, 'neg', -1), (-2002, 'neg', -2), (9000000000000000001, 'big', 9), (-9000000000000000001, 'big', -9)`),
		step(e, "INSERT 0 5", `INSERT INTO wallets (id, owner, amount) VALUES (3001, 'r', 1.5), (3002, 'r', 2.25),
			(-3003, 'r', 3), (3004, 'r', NULL), (3005, 'r', 5) RETURNING id, amount, version`),
		step(e, "INSERT 0 1", `INSERT INTO wallets (id, owner, amount) VALUES ($1, $2, $3)`, int64(4001), "param", int64(12)),
		step(e, "INSERT 0 3", `INSERT INTO wallets (id, owner) VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING id`,
			int64(4002), "p2", int64(-4003), "p3", int64(4004), "p4"),
		step(e, "", `INSERT INTO wallets (id, owner) VALUES (1, 'duplicate')`),
		step(s, "INSERT 0 1", `INSERT INTO wallets (id, owner) VALUES (5, 'upserted')
			ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner RETURNING id, owner`),
		step(e, "INSERT 0 1", `INSERT INTO wallets (id, owner) VALUES (1, 'x'), (2, 'x'), (5001, 'fresh')
			ON CONFLICT DO NOTHING`),
		step(e, "UPDATE 1", `UPDATE wallets SET amount = amount + 1 WHERE id = 5`),
		step(s, "UPDATE 1", `UPDATE wallets SET version = version + 1 WHERE id = $1`, int64(-3)),
		step(e, "UPDATE 5", `UPDATE wallets SET version = version + 10 WHERE id IN (1, 2, 3, -1, 9223372036854775807)
			RETURNING id, version`),
		step(e, "UPDATE 3", `UPDATE wallets SET version = version + 100 WHERE id = ANY($1)`,
			[]int64{4, 6, -9223372036854775808, 424242}),
		step(e, "", `UPDATE wallets SET version = version + 1 WHERE amount > 300`),
		step(s, "", `UPDATE wallets SET owner = upper(owner) WHERE owner = 'w-3' RETURNING id, owner`),
		step(e, "UPDATE 0", `UPDATE wallets SET version = 0 WHERE id = 123456789`),
		step(s, "", `UPDATE wallets SET version = version + 1`),
		// Key updates (before the deletes, so that their rows exist).
		{sql: fmt.Sprintf(`UPDATE wallets SET id = %d WHERE id = 20`, keyFrom(100000, 20, false)), m: e, moves: true},
		{sql: fmt.Sprintf(`UPDATE wallets SET id = %d WHERE id = 21`, keyFrom(100000, 21, false)), m: s, moves: true},
		{sql: `UPDATE wallets SET id = id + 1000000 WHERE owner = 'w-4'`, m: e, moves: true},
		{sql: fmt.Sprintf(`UPDATE wallet_log SET wallet_id = %d WHERE wallet_id = 27 AND n = 1`, keyFrom(100000, 27, false)),
			m: e, moves: true},
		{sql: fmt.Sprintf(`UPDATE wallets SET id = %d WHERE id = 22`, keyFrom(200000, 22, true)), m: e, want: "UPDATE 1", mayRefuse: true},
		{sql: `UPDATE wallets SET id = 24 WHERE id = 24`, m: s, want: "UPDATE 1", mayRefuse: true},
		step(e, "DELETE 1", `DELETE FROM wallets WHERE id = 7`),
		step(e, "DELETE 3", `DELETE FROM wallets WHERE id = ANY($1) RETURNING *`,
			[]int64{8, 9, -9223372036854775808, 424242}),
		step(s, "", `DELETE FROM wallets WHERE owner IS NULL`),
		step(e, "", `DELETE FROM wallets WHERE amount BETWEEN 100 AND 150 RETURNING id, amount`),
		step(e, "DELETE 0", `DELETE FROM wallets WHERE id = -424242`),
		step(e, "INSERT 0 4", `INSERT INTO wallet_log (wallet_id, n, delta) VALUES (1, 10, 1.0), (2, 10, 1.00),
			(-2, 10, 2.50), (150, 10, -0.1)`),
		step(e, "", `UPDATE wallet_log SET delta = delta * 2 WHERE wallet_id = 2`),
		step(s, "", `DELETE FROM wallet_log WHERE n = 1`),
		step(e, "", `UPDATE wallet_log SET note = 'bulk' WHERE delta > 1 RETURNING wallet_id, n, note`),
		// Reference table: every shard's copy.
		step(e, "INSERT 0 1", `INSERT INTO currencies VALUES ('GBP', 0.85, 'Pfund')`),
		step(s, "INSERT 0 2", `INSERT INTO currencies VALUES ('SEK', 11.2, 'krona'), ('NOK', 11.50, 'krone') RETURNING code`),
		step(e, "", `UPDATE currencies SET rate = rate * 1.01 WHERE rate IS NOT NULL`),
		step(e, "DELETE 1", `DELETE FROM currencies WHERE code = 'XXX'`),
		// The unsharded table.
		step(e, "INSERT 0 1", `INSERT INTO kv VALUES ('k10', 100)`),
		step(s, "", `UPDATE kv SET v = v + 1 WHERE v > 10 RETURNING k, v`),
		step(e, "DELETE 1", `DELETE FROM kv WHERE k = 'k0'`),
		// Transactions over several shards, committed and rolled back.
		step(e, "BEGIN", `BEGIN`),
		step(e, "UPDATE 1", `UPDATE wallets SET amount = 1 WHERE id = 2002`),
		step(e, "UPDATE 1", `UPDATE wallets SET amount = 2 WHERE id = -2002`),
		step(e, "INSERT 0 2", `INSERT INTO wallets (id, owner) VALUES (6001, 'tx'), (-6001, 'tx')`),
		step(e, "COMMIT", `COMMIT`),
		step(s, "BEGIN", `BEGIN`),
		step(s, "DELETE 1", `DELETE FROM wallets WHERE id = 2003`),
		step(s, "INSERT 0 1", `INSERT INTO wallets (id) VALUES (6002)`),
		step(s, "", `UPDATE wallets SET version = -1`),
		step(s, "ROLLBACK", `ROLLBACK`),
		// Simple-protocol blocks whose BEGIN the proxy defers: each runs
		// on one shard other than the first, and COMMIT must commit there
		// (the table comparison at the end shows it did).
		step(s, "BEGIN", `BEGIN`),
		step(s, "INSERT 0 1", fmt.Sprintf(`INSERT INTO wallets (id, owner) VALUES (%d, 'deferred-2')`, keyOn(1, 7000))),
		step(s, "UPDATE 1", fmt.Sprintf(`UPDATE wallets SET amount = 7 WHERE id = %d`, keyOn(1, 7000))),
		step(s, "COMMIT", `COMMIT`),
		step(s, "BEGIN", `begin;`),
		step(s, "INSERT 0 1", fmt.Sprintf(`INSERT INTO wallets (id, owner) VALUES (%d, 'deferred-3')`, keyOn(2, 7000))),
		step(s, "SAVEPOINT", `SAVEPOINT a`),
		step(s, "UPDATE 1", fmt.Sprintf(`UPDATE wallets SET owner = 'undone' WHERE id = %d`, keyOn(2, 7000))),
		step(s, "ROLLBACK", `ROLLBACK TO SAVEPOINT a`),
		step(s, "RELEASE", `RELEASE a`),
		step(s, "COMMIT", `end`),
		step(s, "START TRANSACTION", `START TRANSACTION`),
		step(e, "INSERT 0 1", `INSERT INTO wallets (id, owner) VALUES ($1, 'deferred-ext')`, keyOn(2, 7100)),
		step(e, "COMMIT", `COMMIT`),
		step(s, "BEGIN", `BEGIN`),
		step(s, "COMMIT", `COMMIT`),
	}
}

// keyOn is the first key from start up that shard index shard owns.
func keyOn(shard int, start int64) int64 {
	for k := start; ; k++ {
		if shardOf(k) == shard {
			return k
		}
	}
}

func TestDML(t *testing.T) {
	direct, proxy := newSide("direct", directURL), newSide(proxyName, proxyURL)
	defer direct.close()
	defer proxy.close()
	for i, st := range dmlSteps() {
		q := query{cat: "dml", sql: st.sql, args: st.args}
		p := proxy.run(st.m, q)
		where := fmt.Sprintf("step %d (%s): %s%s", i+1, st.m.name, abbrev(st.sql, 120), argsNote(st.args))
		switch {
		case st.moves && !selfCheck:
			if !p.refused() {
				t.Errorf("%s\n    moves a key to another shard: want 0A000 from the proxy, got %s", where, describe(p))
			}
			continue
		case st.mayRefuse && p.refused():
			t.Logf("%s\n    refused (allowed): %v", where, p.err)
			continue
		}
		d := direct.run(st.m, q)
		if st.want != "" && d.tag != st.want {
			t.Errorf("%s\n    direct gave %s, the step expects %q: the step is wrong", where, describe(d), st.want)
		}
		if diff := compare(q, d, p); diff != "" {
			t.Errorf("%s\n    %s", where, diff)
		}
	}
	// The written tables, whole.
	for _, name := range []string{"wallets", "wallet_log", "currencies", "kv"} {
		q := set("dml", "SELECT * FROM "+name)
		if diff := compare(q, direct.run(extended, q), proxy.run(extended, q)); diff != "" {
			t.Errorf("after the DML, %s differs: %s", name, diff)
		}
	}
}

// describe is a result in a few words: its error or its command tag.
func describe(r result) string {
	if r.err != nil {
		return fmt.Sprintf("error %v", r.err)
	}
	return fmt.Sprintf("%q", r.tag)
}
