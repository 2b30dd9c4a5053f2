package sharded_test

// The SELECT corpus and its runner. Every query runs on direct and through
// the proxy, in the extended protocol (pgx's default, statements prepared
// and results partly binary) and in the simple one, and must give the same
// columns, types, command tag and rows. A 0A000 refusal from the proxy is
// allowed for at most a tenth of the corpus: the design lets the proxy
// refuse what it cannot answer exactly, but a proxy that refused most
// queries would pass a suite that only counted wrong answers.
//
// Rules for writing a query here (the self-check enforces them): ORDER BY
// marks a query seq only when it orders every row (ties broken by a unique
// column); ties() when it leaves ties; LIMIT/OFFSET only after an ORDER
// BY that fixes the order; value() when PostgreSQL may return any of
// several equal numerics (1.0 or 1.00).
//
//	go test -count=1 ./test/sharded/ -run 'TestCorpus/agg' -v

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// maxRefusedShare is the share of the corpus the proxy may refuse.
const maxRefusedShare = 0.10

func TestCorpus(t *testing.T) {
	all := corpus()
	if len(all) < 220 {
		t.Fatalf("the corpus has %d queries, fewer than 220", len(all))
	}
	direct, proxy := newSide("direct", directURL), newSide(proxyName, proxyURL)
	defer direct.close()
	defer proxy.close()
	var refused []string
	for i, q := range all {
		t.Run(fmt.Sprintf("%s/%03d", q.cat, i), func(t *testing.T) {
			// Both modes run even after a refusal in one: a query refused
			// in one protocol must not be answered wrongly in the other.
			var why []string
			for _, m := range modes {
				p := check(t, m, q, direct, proxy)
				if !p.refused() {
					continue
				}
				why = append(why, fmt.Sprintf("[%s] %v", m.name, p.err))
				var pe *pgconn.PgError
				if errors.As(p.err, &pe) && pe.Hint == "" {
					t.Errorf("%s protocol: refused without a hint: %v\n    query: %s", m.name, p.err, abbrev(q.sql, 200))
				}
			}
			if len(why) > 0 {
				refused = append(refused, fmt.Sprintf("%s/%03d %s -- %s", q.cat, i, abbrev(q.sql, 90), strings.Join(why, "; ")))
			}
		})
	}
	counts := map[string]int{}
	for _, q := range all {
		counts[q.cat]++
	}
	t.Logf("corpus: %d queries %v; %d refused by the %s", len(all), counts, len(refused), proxyName)
	if len(refused) > 0 {
		msg := fmt.Sprintf("refused (%d of %d):\n  %s", len(refused), len(all), strings.Join(refused, "\n  "))
		if float64(len(refused)) > maxRefusedShare*float64(len(all)) {
			t.Errorf("more than %.0f%% of the corpus refused; %s", 100*maxRefusedShare, msg)
		} else {
			t.Log(msg)
		}
	}
}

// corpus is every query, in categories: catalog, lookup, filter, agg,
// group, having, order, limit, distinct (here) and join, ref, subq,
// textkey, unsharded, misc (corpus_more_test.go).
func corpus() []query {
	var all []query
	all = append(all, catalogQueries...)
	all = append(all, lookupQueries()...)
	all = append(all, filterQueries...)
	all = append(all, aggQueries...)
	all = append(all, groupQueries...)
	all = append(all, havingQueries...)
	all = append(all, orderQueries...)
	all = append(all, limitQueries...)
	all = append(all, distinctQueries...)
	all = append(all, joinQueries()...)
	all = append(all, refQueries()...)
	all = append(all, subqueryQueries...)
	all = append(all, textKeyQueries()...)
	all = append(all, unshardedQueries...)
	all = append(all, miscQueries()...)
	return all
}

// Statements that touch no sharded table: the proxy answers them from any
// one server (or itself).
var catalogQueries = []query{
	seq("catalog", `SELECT 1`),
	seq("catalog", `SELECT now() IS NOT NULL AS ok`),
	seq("catalog", `SELECT version() LIKE 'PostgreSQL%' AS pg`),
	seq("catalog", `SELECT current_database(), current_user`),
	seq("catalog", `SELECT 1 + 1 AS two, 'x' || 'y' AS xy, NULL::int AS nothing`),
	seq("catalog", `SELECT 1.50::numeric(5,2) AS n, 2.5::float8 AS f, DATE '2024-02-29' AS d, true AS b`),
	seq("catalog", `SELECT current_setting('server_version_num')::int >= 150000 AS v15`),
	seq("catalog", `SELECT count(*) FROM pg_class WHERE relname = 'customers' AND relkind = 'r'`),
	seq("catalog", `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = 'customers'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`),
	seq("catalog", `SELECT typname, typlen FROM pg_type WHERE oid IN (20, 23, 1700, 701) ORDER BY oid`),
	set("catalog", `SELECT generate_series(1, 5) AS g`),
	seq("catalog", `SELECT $1::int + 1 AS p`, 41),
}

// Key equality: literals (negative, at the ends of int8, quoted, cast,
// reversed), IN lists, = ANY with a bound array, and key ORs.
func lookupQueries() []query {
	keys := []int64{1, 50, 100, -20, 9000000000000000000, 555, -9223372036854775808}
	return []query{
		seq("lookup", `SELECT * FROM customers WHERE id = 1`),
		seq("lookup", `SELECT * FROM customers WHERE id = -1`),
		seq("lookup", `SELECT * FROM customers WHERE id = 0`),
		seq("lookup", `SELECT * FROM customers WHERE id = 9223372036854775807`),
		seq("lookup", `SELECT * FROM customers WHERE id = -9223372036854775808`),
		seq("lookup", `SELECT * FROM customers WHERE id = 9000000000000000000`),
		seq("lookup", `SELECT name, balance FROM customers WHERE id = 424242`),
		seq("lookup", `SELECT * FROM customers WHERE id = $1`, int64(7)),
		seq("lookup", `SELECT * FROM customers WHERE id = $1`, int64(-9000000000000000000)),
		seq("lookup", `SELECT * FROM customers WHERE id = '17'`),
		seq("lookup", `SELECT * FROM customers WHERE id = 17::bigint`),
		seq("lookup", `SELECT * FROM customers WHERE 23 = id`),
		seq("lookup", `SELECT * FROM customers c WHERE c.id = 2147483648`),
		set("lookup", `SELECT * FROM customers WHERE id IN (1, 2, 3, -4, 9223372036854775807)`),
		seq("lookup", `SELECT id, name FROM customers WHERE id IN (5, 6, 7, 8, 9, 10, -10) ORDER BY id`),
		set("lookup", `SELECT * FROM customers WHERE id = ANY($1)`, keys),
		seq("lookup", `SELECT id, tier FROM customers WHERE id = ANY($1) ORDER BY id`, keys),
		set("lookup", `SELECT * FROM customers WHERE id = ANY('{3,4,5}'::bigint[])`),
		set("lookup", `SELECT * FROM customers WHERE id = ANY(ARRAY[11, 12, 13])`),
		seq("lookup", `SELECT * FROM customers WHERE id = 42 AND active`),
		seq("lookup", `SELECT * FROM customers WHERE id = 43 OR id = 44 ORDER BY id`),
		set("lookup", `SELECT * FROM orders WHERE customer_id = 1`),
		seq("lookup", `SELECT * FROM orders WHERE customer_id = 2 ORDER BY order_id`),
		seq("lookup", `SELECT * FROM orders WHERE customer_id = $1 AND order_id = $2`, int64(3), int64(1)),
		set("lookup", `SELECT * FROM orders WHERE customer_id IN (1, 2, 3) AND status = 'paid'`),
		seq("lookup", `SELECT count(*) FROM orders WHERE customer_id = $1`, int64(5)),
		seq("lookup", `SELECT sum(amount), max(placed) FROM orders WHERE customer_id = 4`),
		set("lookup", `SELECT * FROM orders WHERE customer_id = 777777`),
		set("lookup", `SELECT * FROM events WHERE customer_id = 1`),
		set("lookup", `SELECT * FROM events WHERE customer_id = 2147483647`),
		set("lookup", `SELECT * FROM events WHERE customer_id = -2147483648`),
		set("lookup", `SELECT * FROM events WHERE customer_id = $1`, int32(-5)),
		set("lookup", `SELECT * FROM events WHERE customer_id = ANY($1)`, []int32{1, 2, 3, 2147483647}),
		set("lookup", `SELECT * FROM customers WHERE id = 5 LIMIT 1`),
	}
}

// Scans without a usable key: every shard, rows concatenated.
var filterQueries = []query{
	set("filter", `SELECT * FROM customers WHERE tier = 2`),
	set("filter", `SELECT id, name FROM customers WHERE name LIKE 'Z%'`),
	set("filter", `SELECT id FROM customers WHERE country IS NULL`),
	set("filter", `SELECT id, balance FROM customers WHERE balance < 0`),
	set("filter", `SELECT id, score FROM customers WHERE score = 0`),
	set("filter", `SELECT id FROM customers WHERE active IS NOT TRUE`),
	set("filter", `SELECT id, created FROM customers WHERE created < '2000-01-01'`),
	set("filter", `SELECT id, credit FROM customers WHERE credit = 1`),
	set("filter", `SELECT * FROM orders WHERE status IS NULL`),
	set("filter", `SELECT customer_id, order_id FROM orders WHERE amount BETWEEN 100 AND 200`),
	set("filter", `SELECT customer_id, order_id, note FROM orders WHERE note ILIKE '%é%'`),
	set("filter", `SELECT * FROM events WHERE kind = 'buy' AND payload IS NOT NULL`),
	set("filter", `SELECT id FROM customers WHERE name = 'Zoë'`),
	set("filter", `SELECT id FROM customers WHERE tier IN (1, 3) AND active`),
	set("filter", `SELECT id, name FROM customers WHERE length(name) > 10`),
	set("filter", `SELECT id FROM customers WHERE id > 1000000`),
	set("filter", `SELECT id FROM customers WHERE id < 0`),
	set("filter", `SELECT id FROM customers WHERE id BETWEEN 100 AND 120`),
	set("filter", `SELECT token FROM sessions WHERE hits > 50`),
	set("filter", `SELECT id, score FROM customers WHERE score > 100.5 OR score < -100.5`),
	set("filter", `SELECT * FROM customers WHERE NOT active`),
	set("filter", `SELECT customer_id, order_id FROM orders WHERE placed >= DATE '2023-01-01' AND qty IS NULL`),
	set("filter", `SELECT * FROM events`),
	set("filter", `SELECT * FROM customers`),
}

// Aggregates over whole tables: partial results per shard, merged.
var aggQueries = []query{
	seq("agg", `SELECT count(*) FROM customers`),
	seq("agg", `SELECT count(*), count(name), count(country), count(tier) FROM customers`),
	seq("agg", `SELECT sum(tier), min(tier), max(tier), avg(tier) FROM customers`),
	seq("agg", `SELECT sum(balance), min(balance), max(balance), avg(balance) FROM customers`),
	seq("agg", `SELECT sum(credit), avg(credit) FROM customers`),
	seq("agg", `SELECT max(credit), min(credit) FROM customers`),
	seq("agg", `SELECT sum(score), min(score), max(score), avg(score) FROM customers`),
	seq("agg", `SELECT sum(id), avg(id) FROM customers`),
	seq("agg", `SELECT min(id), max(id) FROM customers`),
	seq("agg", `SELECT bool_and(active), bool_or(active), every(active) FROM customers`),
	seq("agg", `SELECT count(*) FILTER (WHERE active), count(*) FILTER (WHERE NOT active),
		count(*) FILTER (WHERE active IS NULL) FROM customers`),
	seq("agg", `SELECT sum(balance) FILTER (WHERE tier = 1), avg(score) FILTER (WHERE country = 'DE') FROM customers`),
	seq("agg", `SELECT min(name), max(name) FROM customers`),
	seq("agg", `SELECT min(created), max(created) FROM customers`),
	seq("agg", `SELECT count(*), sum(amount), avg(amount), sum(qty), avg(qty) FROM orders`),
	seq("agg", `SELECT min(amount), max(amount), min(placed), max(placed) FROM orders`),
	seq("agg", `SELECT count(*) FROM orders WHERE status = 'paid'`),
	seq("agg", `SELECT count(DISTINCT customer_id) FROM orders`),
	seq("agg", `SELECT count(DISTINCT status) FROM orders`),
	seq("agg", `SELECT count(*), count(payload), min(seq), max(seq), sum(seq) FROM events`),
	seq("agg", `SELECT count(*) FROM events WHERE kind IS NULL`),
	seq("agg", `SELECT sum(hits), avg(hits), max(started), min(started) FROM sessions`),
	seq("agg", `SELECT count(*) FROM customers WHERE id = 1`),
	seq("agg", `SELECT round(avg(balance), 3) AS r FROM customers`),
	seq("agg", `SELECT sum(balance * tier), sum(score * 2) FROM customers`),
	seq("agg", `SELECT count(*) FROM customers WHERE false`),
	seq("agg", `SELECT sum(tier), max(name), bool_and(active), avg(balance) FROM customers WHERE id = -777`),
	seq("agg", `SELECT count(*), sum(balance) FROM customers WHERE tier > 100`),
	seq("agg", `SELECT stddev(balance), variance(tier) FROM customers`),
	seq("agg", `SELECT sum(length(note)), max(length(note)) FROM orders`),
	seq("agg", `SELECT sum(amount) / count(*) AS manual_avg FROM orders`),
	seq("agg", `SELECT count(*)::int AS n, sum(qty)::bigint AS q FROM orders`),
	seq("agg", `SELECT sum(tier)::float8 / nullif(count(tier), 0) AS ratio FROM customers`),
	seq("agg", `SELECT count(1), count(NULL::int), count(id) FROM customers`),
	seq("agg", `SELECT max(balance) - min(balance) AS spread, count(*) * 2 AS twice FROM customers`),
}

// GROUP BY on keys, non-keys, expressions, positions and columns not
// selected; groups must be merged across shards.
var groupQueries = []query{
	set("group", `SELECT tier, count(*) FROM customers GROUP BY tier`),
	seq("group", `SELECT tier, count(*), sum(balance), avg(score) FROM customers GROUP BY tier ORDER BY tier NULLS FIRST`),
	seq("group", `SELECT country, count(*) FROM customers GROUP BY country ORDER BY country`),
	set("group", `SELECT active, count(*), bool_or(tier > 2) FROM customers GROUP BY active`),
	set("group", `SELECT country, tier, count(*), min(balance), max(balance) FROM customers GROUP BY country, tier`),
	set("group", `SELECT count(*) FROM customers GROUP BY tier`),
	set("group", `SELECT sum(balance) FROM customers GROUP BY country`),
	set("group", `SELECT extract(year FROM created) AS y, count(*) FROM customers GROUP BY 1`),
	seq("group", `SELECT date_trunc('month', placed)::date AS m, count(*), sum(amount) FROM orders GROUP BY 1 ORDER BY 1`),
	set("group", `SELECT status, count(*), sum(amount), avg(amount), min(qty), max(qty) FROM orders GROUP BY status`),
	set("group", `SELECT lower(status), count(*) FROM orders GROUP BY lower(status)`),
	set("group", `SELECT customer_id, count(*), sum(amount) FROM orders GROUP BY customer_id`),
	seq("group", `SELECT customer_id, count(*) FROM orders GROUP BY customer_id ORDER BY customer_id`),
	set("group", `SELECT kind, count(*), count(DISTINCT customer_id) FROM events GROUP BY kind`),
	set("group", `SELECT tier % 2 AS parity, count(*) FROM customers GROUP BY tier % 2`),
	set("group", `SELECT (balance > 0) AS positive, count(*), sum(balance) FROM customers GROUP BY (balance > 0)`),
	set("group", `SELECT credit, count(*) FROM customers GROUP BY credit`).value(),
	set("group", `SELECT score, count(*) FROM customers GROUP BY score`),
	set("group", `SELECT name, count(*) FROM customers GROUP BY name`),
	set("group", `SELECT country, bool_and(active), bool_or(active), count(*) FILTER (WHERE active) FROM customers GROUP BY country`),
	set("group", `SELECT tier, sum(score) FILTER (WHERE score > 0), count(*) FILTER (WHERE balance IS NULL) FROM customers GROUP BY tier`),
	set("group", `SELECT created, count(*) FROM customers GROUP BY created`),
	set("group", `SELECT customer_id % 10 AS bucket, sum(seq) FROM events GROUP BY 1`),
	set("group", `SELECT country, min(credit), max(credit) FROM customers GROUP BY country`).value(),
	set("group", `SELECT tier, avg(credit), sum(credit) FROM customers GROUP BY tier`),
	set("group", `SELECT tier, min(name), max(created) FROM customers GROUP BY tier`),
	set("group", `SELECT customer_id, string_agg(status, ',' ORDER BY order_id) FROM orders
		WHERE customer_id IN (1, 2, 3) GROUP BY customer_id`),
	set("group", `SELECT tier, count(*), sum(balance) FROM customers WHERE id > 0 GROUP BY tier, active`),
	set("group", `SELECT country, avg(tier)::numeric(10,3), max(score) FROM customers GROUP BY country`),
}

var havingQueries = []query{
	set("having", `SELECT tier, count(*) FROM customers GROUP BY tier HAVING count(*) > 50`),
	set("having", `SELECT country FROM customers GROUP BY country HAVING sum(balance) > 0`),
	set("having", `SELECT country, count(*) FROM customers GROUP BY country HAVING count(*) BETWEEN 5 AND 30`),
	set("having", `SELECT status, sum(amount) FROM orders GROUP BY status HAVING avg(amount) > 400`),
	set("having", `SELECT customer_id, count(*) FROM orders GROUP BY customer_id HAVING count(*) >= 7`),
	set("having", `SELECT customer_id FROM orders GROUP BY customer_id HAVING sum(amount) > 3000`),
	seq("having", `SELECT tier, count(*) FROM customers GROUP BY tier HAVING tier IS NOT NULL ORDER BY tier`),
	set("having", `SELECT kind, count(*) FROM events GROUP BY kind HAVING count(*) FILTER (WHERE payload IS NULL) > 1`),
	set("having", `SELECT country, max(score) FROM customers GROUP BY country HAVING bool_or(active)`),
	set("having", `SELECT active, count(*) FROM customers GROUP BY active HAVING min(created) < '2000-01-01'`),
	seq("having", `SELECT count(*) FROM customers HAVING count(*) > 0`),
	seq("having", `SELECT sum(tier) FROM customers HAVING count(*) > 100000`),
	seq("having", `SELECT tier, count(*) AS n FROM customers GROUP BY tier HAVING count(*) > 10 ORDER BY n DESC, tier NULLS LAST`),
	set("having", `SELECT country, avg(balance) FROM customers GROUP BY country HAVING avg(balance) < 0`),
}

// ORDER BY: merge sort of per-shard streams, with NULLS FIRST/LAST,
// positions, aliases, expressions and columns not selected.
var orderQueries = []query{
	seq("order", `SELECT id, name FROM customers ORDER BY id`),
	seq("order", `SELECT id FROM customers ORDER BY id DESC`),
	seq("order", `SELECT id, name FROM customers ORDER BY name, id`),
	seq("order", `SELECT id, name FROM customers ORDER BY name DESC NULLS LAST, id`),
	seq("order", `SELECT id, tier FROM customers ORDER BY tier NULLS FIRST, id DESC`),
	seq("order", `SELECT id, tier FROM customers ORDER BY tier DESC NULLS FIRST, id`),
	ties("order", []int{0}, `SELECT tier, id FROM customers ORDER BY tier`),
	ties("order", []int{0}, `SELECT country, name FROM customers ORDER BY country NULLS FIRST`),
	ties("order", []int{0, 1}, `SELECT status, placed, order_id FROM orders ORDER BY status, placed`),
	ties("order", []int{0}, `SELECT active, id FROM customers ORDER BY active NULLS FIRST`),
	seq("order", `SELECT id, balance FROM customers ORDER BY balance, id`),
	seq("order", `SELECT id, balance FROM customers ORDER BY balance DESC NULLS LAST, id`),
	seq("order", `SELECT id, score FROM customers ORDER BY score, id`),
	seq("order", `SELECT id, credit FROM customers ORDER BY credit DESC, id`),
	seq("order", `SELECT id, created FROM customers ORDER BY created NULLS FIRST, id`),
	seq("order", `SELECT id, active FROM customers ORDER BY active, id`),
	seq("order", `SELECT id, name FROM customers ORDER BY 2, 1`),
	seq("order", `SELECT id AS k, name AS n FROM customers ORDER BY n, k`),
	seq("order", `SELECT id, balance * 2 AS dbl FROM customers ORDER BY dbl, id`),
	seq("order", `SELECT id, name FROM customers ORDER BY length(name), name, id`),
	seq("order", `SELECT id FROM customers ORDER BY tier, balance, id`),
	seq("order", `SELECT customer_id, order_id, amount FROM orders ORDER BY amount DESC NULLS LAST, customer_id, order_id`),
	seq("order", `SELECT customer_id, order_id FROM orders ORDER BY customer_id, order_id`),
	seq("order", `SELECT token FROM sessions ORDER BY token`),
	seq("order", `SELECT token, hits FROM sessions ORDER BY hits NULLS FIRST, token`),
	seq("order", `SELECT customer_id, seq, kind FROM events WHERE customer_id = 3 ORDER BY seq, kind NULLS LAST`),
	seq("order", `SELECT id, name FROM customers WHERE tier = 1 ORDER BY name COLLATE "C", id`),
	seq("order", `SELECT id, upper(name) AS u FROM customers ORDER BY u NULLS FIRST, id`),
	seq("order", `SELECT id, score FROM customers ORDER BY abs(score) DESC, id`),
	seq("order", `SELECT customer_id, seq, kind, payload FROM events ORDER BY customer_id, seq, kind, payload`),
}

// LIMIT and OFFSET, always after an ORDER BY that fixes the order.
var limitQueries = []query{
	seq("limit", `SELECT id FROM customers ORDER BY id LIMIT 10`),
	seq("limit", `SELECT id FROM customers ORDER BY id DESC LIMIT 5`),
	seq("limit", `SELECT id FROM customers ORDER BY id LIMIT 10 OFFSET 20`),
	seq("limit", `SELECT id, name FROM customers ORDER BY name NULLS FIRST, id LIMIT 15`),
	seq("limit", `SELECT id, balance FROM customers ORDER BY balance DESC NULLS LAST, id LIMIT 7 OFFSET 3`),
	seq("limit", `SELECT id, tier FROM customers ORDER BY tier, id LIMIT 25`),
	seq("limit", `SELECT customer_id, order_id, amount FROM orders ORDER BY amount DESC NULLS LAST, customer_id, order_id LIMIT 10`),
	seq("limit", `SELECT id FROM customers ORDER BY id OFFSET 495`),
	seq("limit", `SELECT id FROM customers ORDER BY id LIMIT 0`),
	seq("limit", `SELECT id FROM customers ORDER BY id LIMIT ALL OFFSET 490`),
	seq("limit", `SELECT id FROM customers ORDER BY id LIMIT $1 OFFSET $2`, int64(5), int64(100)),
	seq("limit", `SELECT id, score FROM customers ORDER BY score DESC NULLS LAST, id LIMIT 10`),
	seq("limit", `SELECT token FROM sessions ORDER BY token DESC LIMIT 5`),
	seq("limit", `SELECT id FROM customers WHERE tier = 2 ORDER BY created NULLS LAST, id LIMIT 8`),
	seq("limit", `SELECT id FROM customers ORDER BY id FETCH FIRST 3 ROWS ONLY`),
	seq("limit", `SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id ORDER BY n DESC, customer_id LIMIT 10`),
	seq("limit", `SELECT tier, sum(balance) AS s FROM customers GROUP BY tier ORDER BY s DESC NULLS LAST, tier LIMIT 3`),
	seq("limit", `SELECT id FROM customers ORDER BY id LIMIT 5 OFFSET 100000`),
	seq("limit", `SELECT DISTINCT tier FROM customers ORDER BY tier LIMIT 3`),
	seq("limit", `SELECT * FROM orders WHERE customer_id = 7 ORDER BY order_id DESC LIMIT 2`),
	seq("limit", `SELECT id, created FROM customers ORDER BY created DESC NULLS LAST, id DESC LIMIT 4 OFFSET 1`),
}

var distinctQueries = []query{
	set("distinct", `SELECT DISTINCT tier FROM customers`),
	seq("distinct", `SELECT DISTINCT country FROM customers ORDER BY country`),
	set("distinct", `SELECT DISTINCT status FROM orders`),
	set("distinct", `SELECT DISTINCT country, tier FROM customers`),
	set("distinct", `SELECT DISTINCT credit FROM customers`).value(),
	set("distinct", `SELECT DISTINCT score FROM customers`),
	set("distinct", `SELECT DISTINCT active FROM customers`),
	set("distinct", `SELECT DISTINCT customer_id FROM orders`),
	set("distinct", `SELECT DISTINCT kind, customer_id % 3 FROM events`),
	seq("distinct", `SELECT DISTINCT ON (tier) tier, id FROM customers ORDER BY tier, id`),
	set("distinct", `SELECT DISTINCT lower(name) FROM customers`),
	set("distinct", `SELECT DISTINCT * FROM events`),
	set("distinct", `SELECT DISTINCT created FROM customers WHERE created < '2001-01-01'`),
	seq("distinct", `SELECT DISTINCT status FROM orders ORDER BY status NULLS FIRST`),
}
