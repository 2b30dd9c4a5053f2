package sharded_test

// The schema and the rows both sides get. The rows come from a fixed-seed
// generator (splitmix64, written out here so that no library change can
// alter the stream) and are written as SQL literals, so that direct and
// the proxy parse the very same text. They are chosen for what breaks
// merging and routing: NULLs in every nullable column, duplicate values
// and duplicate rows, negative keys, keys at and near the ends of int8 and
// int4, numerics of one value in several scales (1, 1.0, 1.00), -0 and 0
// as float8, non-ASCII and empty text, dates before 2000 and one BC.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

// schema runs through the proxy (which broadcasts DDL to every shard) and
// on direct, one statement at a time.
var schema = []string{
	`CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL, region text)`,
	`CREATE TABLE customers (id bigint PRIMARY KEY, name text, country text, tier int,
		balance numeric(12,2), credit numeric, score float8, created date, active bool)`,
	`CREATE TABLE orders (customer_id bigint, order_id bigint, amount numeric(10,2), qty int,
		status text, placed date, note text, PRIMARY KEY (customer_id, order_id))`,
	`CREATE TABLE events (customer_id int NOT NULL, seq int, kind text, payload text)`,
	`CREATE TABLE sessions (token text PRIMARY KEY, customer_id bigint, started timestamp,
		hits int, agent text)`,
	`CREATE TABLE settings (k text PRIMARY KEY, v text)`,
	`CREATE INDEX orders_status ON orders (status)`,
	// Tables only the DML test writes, so that the corpus never depends on
	// whether DML ran first.
	`CREATE TABLE wallets (id bigint PRIMARY KEY, owner text, amount numeric(12,2),
		version int NOT NULL DEFAULT 0)`,
	`CREATE TABLE wallet_log (wallet_id bigint, n int, delta numeric, note text,
		PRIMARY KEY (wallet_id, n))`,
	`CREATE TABLE currencies (code text PRIMARY KEY, rate numeric, name text)`,
	`CREATE TABLE kv (k text PRIMARY KEY, v int)`,
}

// shardedTable is a sharded table and its key; text says the key is text
// (hashtextextended) rather than an integer (hashint8extended).
type shardedTable struct {
	name, key string
	text      bool
}

var shardedTables = []shardedTable{
	{"customers", "id", false},
	{"orders", "customer_id", false},
	{"events", "customer_id", false},
	{"sessions", "token", true},
	{"wallets", "id", false},
	{"wallet_log", "wallet_id", false},
}

var referenceTables = []string{"countries", "currencies"}

// unshardedTables are not configured: they live on the first shard.
var unshardedTables = []string{"settings", "kv"}

func tableConfig() []config.Table {
	var ts []config.Table
	for _, t := range shardedTables {
		ts = append(ts, config.Table{Name: t.name, Key: t.key})
	}
	for _, name := range referenceTables {
		ts = append(ts, config.Table{Name: name, Reference: true})
	}
	// Created and dropped by TestCopyThroughShards.
	ts = append(ts, config.Table{Name: "copy_items", Key: "id"})
	return ts
}

// table is one table's generated rows, each value a SQL literal.
type table struct {
	name string
	cols []string
	rows [][]string
}

type fixture struct{ tables []table }

// statements is the schema and then multi-row INSERTs. reordered gives
// the rows in another (still fixed) order and other batch sizes: the
// self-check's second server is loaded that way.
func (f fixture) statements(reordered bool) []string {
	stmts := append([]string(nil), schema...)
	for _, t := range f.tables {
		rows, batch := t.rows, 50
		if reordered {
			rows = shuffled(rows, uint64(len(t.name)))
			batch = 37
		}
		for i := 0; i < len(rows); i += batch {
			stmts = append(stmts, insertSQL(t.name, t.cols, rows[i:min(i+batch, len(rows))]))
		}
	}
	return stmts
}

func insertSQL(name string, cols []string, rows [][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", name, strings.Join(cols, ", "))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + strings.Join(r, ", ") + ")")
	}
	return b.String()
}

// gen is splitmix64 with a fixed seed.
type gen struct{ s uint64 }

func (g *gen) next() uint64 {
	g.s += 0x9e3779b97f4a7c15
	z := g.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (g *gen) n(k int) int             { return int(g.next() % uint64(k)) }
func (g *gen) pct(p int) bool          { return g.n(100) < p }
func (g *gen) pick(xs []string) string { return xs[g.n(len(xs))] }

// orNull is NULL with probability p percent, else v.
func (g *gen) orNull(p int, v string) string {
	if g.pct(p) {
		return "NULL"
	}
	return v
}

func shuffled(rows [][]string, seed uint64) [][]string {
	out := append([][]string(nil), rows...)
	g := gen{s: seed}
	for i := len(out) - 1; i > 0; i-- {
		j := g.n(i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func num(v int64) string  { return strconv.FormatInt(v, 10) }

// cents writes v/100 with two decimals.
func cents(v int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// date is a day from 2018 to 2025.
func date(g *gen) string {
	return lit(time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, g.n(2900)).Format(time.DateOnly))
}

var (
	names = []string{"Ann", "Bob", "Zoë", "Łukasz", "東京太郎", "Ольга", "José", "Ñandú",
		"O'Brien", "Ærø", "émile", "Émile", "Zed", "", " spaced ", "ALLCAPS", "Zoe", "😀 smile"}
	countryRows = [][]string{
		{"AT", "Österreich", "Europe"}, {"DE", "Deutschland", "Europe"}, {"ES", "España", "Europe"},
		{"FR", "France", "Europe"}, {"GR", "Ελλάδα", "Europe"}, {"IS", "Ísland", "Europe"},
		{"NO", "Norge", "Europe"}, {"PL", "Polska", "Europe"}, {"RU", "Россия", "Europe"},
		{"TR", "Türkiye", "Asia"}, {"JP", "日本", "Asia"}, {"CN", "中国", "Asia"},
		{"IN", "भारत", "Asia"}, {"KR", "대한민국", "Asia"}, {"US", "United States", "Americas"},
		{"MX", "México", "Americas"}, {"BR", "Brasil", "Americas"}, {"CA", "Canada", "Americas"},
		{"CI", "Côte d'Ivoire", "Africa"}, {"EG", "مصر", "Africa"}, {"ZA", "South Africa", "Africa"},
		{"AQ", "Antarctica", ""},
	}
	codes = []string{"AT", "DE", "ES", "FR", "GR", "JP", "US", "US", "DE", "MX", "BR", "IN", "CI", "EG", "ZZ"}
	// credits are one numeric value in several scales, and others.
	credits = []string{"1", "1.0", "1.00", "2.5", "2.50", "-0.10", "0.1", "100", "1e3",
		"0.000001", "42.4200", "-7"}
	statuses = []string{"new", "paid", "paid", "shipped", "cancelled", "Paid", "NULL"}
	notes    = []string{"", "ok", "café", "naïve résumé", "it's", "東京", "x\ty", "über-fast"}
	kinds    = []string{"click", "view", "view", "buy", "NULL"}
	agents   = []string{"curl/8", "Mozilla/5.0", "psql", "Ünïcode-Agent", ""}
)

// customerIDs: small positive, negative, and keys at the ends of int8 and
// int4 and at the boundaries of the three ranges' neighbourhood.
func customerIDs() []int64 {
	var ids []int64
	for i := int64(1); i <= 400; i++ {
		ids = append(ids, i)
	}
	for i := int64(-1); i >= -40; i-- {
		ids = append(ids, i)
	}
	ids = append(ids, 0, 9000000000000000000, -9000000000000000000, 9223372036854775807,
		-9223372036854775808, 4611686018427387904, -4611686018427387904, 1<<40,
		2147483647, 2147483648, -2147483648, -2147483649)
	for k := int64(0); k < 50; k++ {
		ids = append(ids, 1000000+k*7919)
	}
	return ids
}

func kind(g *gen) string {
	if s := g.pick(kinds); s != "NULL" {
		return lit(s)
	}
	return "NULL"
}

func status(g *gen) string {
	if s := g.pick(statuses); s != "NULL" {
		return lit(s)
	}
	return "NULL"
}

func buildFixture() fixture {
	g := &gen{s: 20240501}
	var f fixture

	countries := table{name: "countries", cols: []string{"code", "name", "region"}}
	for _, r := range countryRows {
		region := lit(r[2])
		if r[2] == "" {
			region = "NULL"
		}
		countries.rows = append(countries.rows, []string{lit(r[0]), lit(r[1]), region})
	}

	customers := table{name: "customers", cols: []string{"id", "name", "country", "tier",
		"balance", "credit", "score", "created", "active"}}
	ids := customerIDs()
	for i, id := range ids {
		name := g.pick(names)
		if g.pct(40) {
			name = fmt.Sprintf("%s %d", name, i%37)
		}
		score := fmt.Sprintf("%g", float64(g.n(2001)-1000)/8)
		switch i % 97 {
		case 3:
			score = "'-0'::float8"
		case 5:
			score = "0"
		case 7:
			score = "0.1"
		case 11:
			score = "0.3333333333333333"
		case 13:
			score = "-25000000000.5"
		}
		created := date(g)
		switch i {
		case 17:
			created = "'0044-03-15 BC'"
		case 18:
			created = "'1999-12-31'"
		case 19:
			created = "'2000-02-29'"
		}
		credit := g.pick(credits)
		switch i {
		case 30:
			credit = "123456789.123456789"
		case 31:
			credit = "-3.14159"
		}
		active := []string{"true", "false", "NULL"}[g.n(3)]
		customers.rows = append(customers.rows, []string{
			num(id), g.orNull(5, lit(name)), g.orNull(8, lit(g.pick(codes))),
			g.orNull(10, strconv.Itoa(g.n(5))), g.orNull(7, cents(g.n(2000001)-1000000)),
			g.orNull(10, credit), g.orNull(8, score), g.orNull(5, created), active,
		})
	}

	orders := table{name: "orders", cols: []string{"customer_id", "order_id", "amount", "qty",
		"status", "placed", "note"}}
	orderOwners := append(append([]int64(nil), ids...), 777777, -777777, 5555555555)
	for _, cid := range orderOwners {
		n := g.n(9)
		for k := 1; k <= n; k++ {
			oid := int64(k)
			if g.pct(3) {
				oid = 1<<50 + int64(k)
			}
			orders.rows = append(orders.rows, []string{
				num(cid), num(oid), g.orNull(5, cents(g.n(100000))), g.orNull(5, strconv.Itoa(1+g.n(10))),
				status(g), g.orNull(5, date(g)), g.orNull(30, lit(g.pick(notes))),
			})
		}
	}
	orders.rows = append(orders.rows, []string{"1", "999", "12.30", "1", "'new'", "'2024-02-29'", lit(strings.Repeat("long ", 60))})

	events := table{name: "events", cols: []string{"customer_id", "seq", "kind", "payload"}}
	for i := 0; i < 800; i++ {
		if i > 0 && g.pct(6) {
			// An exact duplicate row: the table has no key, so a multiset
			// must keep both.
			events.rows = append(events.rows, events.rows[g.n(len(events.rows))])
			continue
		}
		cid := ids[g.n(len(ids))]
		if cid > 2147483647 || cid < -2147483648 {
			cid = []int64{2147483647, -2147483648}[g.n(2)]
		}
		events.rows = append(events.rows, []string{num(cid), strconv.Itoa(g.n(50)),
			kind(g), g.orNull(20, lit(fmt.Sprintf("p%d-%s", g.n(30), g.pick(notes))))})
	}

	sessions := table{name: "sessions", cols: []string{"token", "customer_id", "started", "hits", "agent"}}
	tokens := []string{"", "ä", "Ünïcödé-tok", "tok with space", "TOK-0001", "o'quote", "日本語トークン",
		strings.Repeat("long-token-", 20)}
	for i := 0; i < 290; i++ {
		tokens = append(tokens, fmt.Sprintf("tok-%04d", i))
	}
	for _, tok := range tokens {
		started := lit(fmt.Sprintf("2023-%02d-%02d %02d:%02d:%02d.%03d", 1+g.n(12), 1+g.n(28),
			g.n(24), g.n(60), g.n(60), g.n(1000)))
		sessions.rows = append(sessions.rows, []string{lit(tok),
			g.orNull(10, num(ids[g.n(60)])), g.orNull(5, started), g.orNull(10, strconv.Itoa(g.n(100))),
			g.orNull(10, lit(g.pick(agents)))})
	}

	settings := table{name: "settings", cols: []string{"k", "v"}}
	for _, kv := range [][2]string{{"mode", "strict"}, {"tz", "Europe/Vienna"}, {"home", "AT"},
		{"alt", "JP"}, {"empty", ""}, {"none", "NULL"}, {"greeting", "grüß dich"}, {"limit", "100"}} {
		v := lit(kv[1])
		if kv[1] == "NULL" {
			v = "NULL"
		}
		settings.rows = append(settings.rows, []string{lit(kv[0]), v})
	}

	wallets := table{name: "wallets", cols: []string{"id", "owner", "amount", "version"}}
	walletLog := table{name: "wallet_log", cols: []string{"wallet_id", "n", "delta", "note"}}
	for i, id := range walletIDs() {
		wallets.rows = append(wallets.rows, []string{num(id), g.orNull(10, lit(fmt.Sprintf("w-%d", i%9))),
			g.orNull(5, cents(g.n(50000))), "0"})
		for k := 1; k <= i%4; k++ {
			walletLog.rows = append(walletLog.rows, []string{num(id), strconv.Itoa(k),
				g.pick(credits), g.orNull(30, lit(g.pick(notes)))})
		}
	}
	currencies := table{name: "currencies", cols: []string{"code", "rate", "name"}}
	for _, c := range [][3]string{{"EUR", "1", "Euro"}, {"USD", "1.08", "US dollar"},
		{"JPY", "161.50", "円"}, {"CHF", "0.9700", "Franken"}, {"XXX", "NULL", "none"}} {
		rate := c[1]
		currencies.rows = append(currencies.rows, []string{lit(c[0]), rate, lit(c[2])})
	}
	kv := table{name: "kv", cols: []string{"k", "v"}}
	for i := 0; i < 10; i++ {
		kv.rows = append(kv.rows, []string{lit(fmt.Sprintf("k%d", i)), strconv.Itoa(i * i)})
	}

	f.tables = []table{countries, customers, orders, events, sessions, settings,
		wallets, walletLog, currencies, kv}
	return f
}

// walletIDs are the DML test's initial keys: spread over the keyspace.
func walletIDs() []int64 {
	var ids []int64
	for i := int64(1); i <= 150; i++ {
		ids = append(ids, i)
	}
	for i := int64(-1); i >= -20; i-- {
		ids = append(ids, i)
	}
	return append(ids, 9223372036854775807, -9223372036854775808, 5000000000, -5000000000)
}
