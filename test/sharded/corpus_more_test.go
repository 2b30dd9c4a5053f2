package sharded_test

// The second half of the corpus: joins that stay on one shard because
// both sides are sharded on the same key, joins with the reference table
// (a full copy on every shard), subqueries correlated on the key, the text
// key, the unsharded table, and expressions. Some queries here are traps for
// a naive scatter: a reference table LEFT JOINed to a sharded one repeats
// its unmatched rows once per shard, and a semi-join from the reference
// table finds the same row on several shards. The proxy must answer those
// exactly or refuse them.

// Colocated joins: customers, orders and events share the key (events'
// key is int4, which hashes like int8).
func joinQueries() []query {
	return []query{
		set("join", `SELECT c.id, c.name, o.order_id, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 5`),
		set("join", `SELECT c.id, o.order_id FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.tier = 1`),
		set("join", `SELECT c.id, count(o.order_id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id`),
		seq("join", `SELECT c.id, count(o.order_id), sum(o.amount) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
			GROUP BY c.id ORDER BY c.id`),
		set("join", `SELECT o.customer_id, o.order_id FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL`),
		seq("join", `SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id`),
		seq("join", `SELECT sum(o.amount), avg(o.qty) FROM customers c JOIN orders o ON c.id = o.customer_id WHERE c.active`),
		set("join", `SELECT c.country, sum(o.amount) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.country`),
		seq("join", `SELECT c.name, o.order_id FROM customers c JOIN orders o ON o.customer_id = c.id
			WHERE c.id = ANY($1) ORDER BY c.id, o.order_id`, []int64{1, 2, 3, -1, 9223372036854775807}),
		set("join", `SELECT c.id, e.seq, e.kind FROM customers c JOIN events e ON e.customer_id = c.id WHERE c.id < 20`),
		seq("join", `SELECT count(*), count(DISTINCT e.customer_id) FROM events e JOIN customers c ON c.id = e.customer_id`),
		set("join", `SELECT c.id, o.order_id, e.seq FROM customers c JOIN orders o ON o.customer_id = c.id
			JOIN events e ON e.customer_id = c.id WHERE c.id IN (1, 2, 3)`),
		seq("join", `SELECT c.id, o.order_id FROM customers c JOIN orders o ON o.customer_id = c.id
			ORDER BY o.amount DESC NULLS LAST, c.id, o.order_id LIMIT 10`),
		set("join", `SELECT c.id, o.status FROM customers c, orders o WHERE o.customer_id = c.id AND o.status = 'shipped' AND c.tier >= 3`),
		set("join", `SELECT c.id, o.order_id FROM customers c RIGHT JOIN orders o ON o.customer_id = c.id WHERE o.qty > 8`),
		set("join", `SELECT c.id, o.order_id FROM customers c FULL JOIN orders o ON o.customer_id = c.id
			WHERE c.id IS NULL OR o.order_id IS NULL`),
		seq("join", `SELECT c.tier, count(DISTINCT c.id), count(o.*) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
			GROUP BY c.tier ORDER BY c.tier NULLS FIRST`),
		set("join", `SELECT o1.customer_id, o1.order_id, o2.order_id FROM orders o1
			JOIN orders o2 ON o2.customer_id = o1.customer_id AND o2.order_id = o1.order_id + 1 WHERE o1.customer_id < 30`),
		set("join", `SELECT c.id, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id AND o.amount > c.balance`),
		set("join", `SELECT c.id, o.order_id FROM customers c JOIN orders o ON o.customer_id = c.id
			WHERE c.id = 9223372036854775807 OR c.id = -9223372036854775808`),
		seq("join", `SELECT o.status, count(*), sum(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id
			WHERE c.country = 'DE' GROUP BY o.status ORDER BY o.status NULLS LAST`),
	}
}

// The reference table joined to sharded ones, and on its own.
func refQueries() []query {
	return []query{
		set("ref", `SELECT c.id, k.name FROM customers c JOIN countries k ON k.code = c.country WHERE c.tier = 2`),
		seq("ref", `SELECT k.region, count(*) FROM customers c JOIN countries k ON k.code = c.country
			GROUP BY k.region ORDER BY k.region NULLS LAST`),
		set("ref", `SELECT c.id, k.name FROM customers c LEFT JOIN countries k ON k.code = c.country WHERE k.code IS NULL`),
		seq("ref", `SELECT * FROM countries ORDER BY code`),
		seq("ref", `SELECT count(*) FROM countries`),
		set("ref", `SELECT code, name FROM countries WHERE region = 'Europe'`),
		seq("ref", `SELECT region, count(*) FROM countries GROUP BY region ORDER BY region NULLS FIRST`),
		seq("ref", `SELECT c.id, k.name, o.order_id FROM customers c JOIN countries k ON k.code = c.country
			JOIN orders o ON o.customer_id = c.id WHERE c.id = 8 ORDER BY o.order_id`),
		set("ref", `SELECT k.code, count(c.id) FROM countries k LEFT JOIN customers c ON c.country = k.code GROUP BY k.code`),
		set("ref", `SELECT k.code, c.id FROM countries k LEFT JOIN customers c ON c.country = k.code WHERE k.region = 'Asia'`),
		set("ref", `SELECT c.id FROM customers c WHERE c.country IN (SELECT code FROM countries WHERE region = 'Asia')`),
		set("ref", `SELECT name FROM countries WHERE code IN (SELECT country FROM customers WHERE tier = 4)`),
		seq("ref", `SELECT k.name, sum(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id
			JOIN countries k ON k.code = c.country GROUP BY k.name ORDER BY k.name`),
		set("ref", `SELECT c.id, k.region FROM customers c, countries k WHERE k.code = c.country AND c.id = ANY($1)`,
			[]int64{1, 2, 3, 4, 5, 6, -3}),
		seq("ref", `SELECT code FROM countries WHERE code = $1`, "JP"),
	}
}

// Subqueries that stay colocated: correlated on the key, IN on the key,
// derived tables grouped by the key, CTEs.
var subqueryQueries = []query{
	set("subq", `SELECT id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'paid')`),
	set("subq", `SELECT id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)`),
	set("subq", `SELECT id FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE amount > 900)`),
	seq("subq", `SELECT id, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) AS n FROM customers c WHERE id = 10`),
	set("subq", `SELECT id, (SELECT max(amount) FROM orders o WHERE o.customer_id = c.id) FROM customers c WHERE tier = 3`),
	set("subq", `SELECT t.customer_id, t.s FROM (SELECT customer_id, sum(amount) AS s FROM orders GROUP BY customer_id) t WHERE t.s > 2000`),
	seq("subq", `SELECT count(*) FROM (SELECT customer_id FROM orders GROUP BY customer_id HAVING count(*) > 3) t`),
	set("subq", `WITH big AS (SELECT customer_id FROM orders WHERE amount > 950)
		SELECT c.id, c.name FROM customers c JOIN big b ON b.customer_id = c.id`),
	seq("subq", `SELECT * FROM (SELECT id, name FROM customers WHERE id = 3) s`),
	set("subq", `SELECT id FROM customers WHERE id IN (SELECT customer_id FROM events WHERE kind = 'buy') AND tier = 1`),
	set("subq", `SELECT c.id FROM customers c WHERE c.balance > (SELECT avg(o.amount) FROM orders o WHERE o.customer_id = c.id)`),
	seq("subq", `SELECT (SELECT count(*) FROM customers) AS c, (SELECT count(*) FROM orders) AS o`),
	set("subq", `SELECT id FROM customers WHERE id = 1 UNION ALL SELECT id FROM customers WHERE id = 2`),
	seq("subq", `WITH o AS (SELECT * FROM orders WHERE customer_id = 6) SELECT order_id, amount FROM o ORDER BY order_id`),
}

// The text key: empty, non-ASCII, case, quotes, varchar casts, bound text.
func textKeyQueries() []query {
	return []query{
		seq("textkey", `SELECT * FROM sessions WHERE token = 'tok-0001'`),
		seq("textkey", `SELECT * FROM sessions WHERE token = ''`),
		seq("textkey", `SELECT * FROM sessions WHERE token = 'Ünïcödé-tok'`),
		seq("textkey", `SELECT * FROM sessions WHERE token = $1`, "日本語トークン"),
		set("textkey", `SELECT * FROM sessions WHERE token IN ('tok-0002', 'tok-0003', 'o''quote', 'missing')`),
		set("textkey", `SELECT token, hits FROM sessions WHERE token = ANY($1)`,
			[]string{"ä", "tok-0100", "tok with space", "", "nope"}),
		seq("textkey", `SELECT token FROM sessions WHERE token = 'TOK-0001'`),
		seq("textkey", `SELECT count(*) FROM sessions WHERE token LIKE 'tok-00%'`),
		set("textkey", `SELECT token FROM sessions WHERE customer_id = 5`),
		seq("textkey", `SELECT token, customer_id FROM sessions WHERE token = 'tok with space'`),
		seq("textkey", `SELECT * FROM sessions WHERE token = 'tok-0004'::varchar`),
		set("textkey", `SELECT token, started FROM sessions WHERE started < '2023-03-01'`),
		seq("textkey", `SELECT customer_id, count(*) FROM sessions GROUP BY customer_id ORDER BY customer_id NULLS FIRST`),
		seq("textkey", `SELECT length(token), token FROM sessions ORDER BY 1 DESC, 2 LIMIT 5`),
		seq("textkey", `SELECT s.token, c.name FROM sessions s JOIN customers c ON c.id = s.customer_id
			WHERE s.token = 'tok-0005'`),
	}
}

// The unsharded table lives on the first shard only.
var unshardedQueries = []query{
	seq("unsharded", `SELECT * FROM settings ORDER BY k`),
	seq("unsharded", `SELECT v FROM settings WHERE k = 'mode'`),
	seq("unsharded", `SELECT count(*), count(v) FROM settings`),
	set("unsharded", `SELECT s.k, k.name FROM settings s JOIN countries k ON k.code = s.v`),
	seq("unsharded", `SELECT k, length(v) FROM settings WHERE v IS NOT NULL ORDER BY 2 DESC, 1`),
	seq("unsharded", `SELECT * FROM settings WHERE k = $1`, "tz"),
}

// Expressions, casts, CASE, windows partitioned by the key, row values.
func miscQueries() []query {
	return []query{
		set("misc", `SELECT id, CASE WHEN tier IS NULL THEN 'none' WHEN tier > 2 THEN 'high' ELSE 'low' END AS band
			FROM customers WHERE id < 50`),
		seq("misc", `SELECT id, coalesce(name, '?') || '/' || coalesce(country, '?') AS label FROM customers
			WHERE id = ANY($1) ORDER BY id`, []int64{1, 2, 3, 4, 5, 17, -9223372036854775808}),
		set("misc", `SELECT id, balance::float8 AS bf, score::numeric AS sn FROM customers WHERE tier = 3`),
		set("misc", `SELECT id, created + 30 AS later, extract(dow FROM created) AS dow FROM customers WHERE tier = 0`),
		set("misc", `SELECT customer_id, order_id, row_number() OVER (PARTITION BY customer_id ORDER BY order_id) FROM orders
			WHERE customer_id < 20`),
		set("misc", `SELECT customer_id, order_id, sum(amount) OVER (PARTITION BY customer_id) FROM orders`),
		seq("misc", `SELECT id, rank() OVER (ORDER BY balance DESC NULLS LAST, id) FROM customers ORDER BY id LIMIT 20`),
		set("misc", `SELECT id, name FROM customers WHERE name ~ '^[A-Z]' AND id > 0`),
		seq("misc", `SELECT id, to_char(created, 'YYYY-MM') FROM customers WHERE id = 12`),
		set("misc", `SELECT id, balance FROM customers WHERE balance IS DISTINCT FROM 0`),
		set("misc", `SELECT id FROM customers WHERE (tier, active) = (1, true)`),
		seq("misc", `SELECT count(*) FROM customers WHERE name IS NULL OR country IS NULL`),
		set("misc", `SELECT id, greatest(balance, 0), least(score, 0) FROM customers WHERE tier = 4`),
		seq("misc", `SELECT * FROM customers WHERE id = 5 FOR UPDATE`),
		seq("misc", `SELECT 'é'::text AS e, octet_length('東京') AS b`),
		set("misc", `SELECT customer_id, jsonb_build_object('o', order_id, 'a', amount) AS j FROM orders WHERE customer_id = 9`),
		set("misc", `SELECT id, balance, credit, balance + credit AS total FROM customers WHERE id BETWEEN -5 AND 5`),
		set("misc", `SELECT id, created::timestamp AS ts, created - DATE '2000-01-01' AS days FROM customers WHERE id < 10`),
	}
}
