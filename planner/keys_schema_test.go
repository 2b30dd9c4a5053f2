package planner_test

// A map-backed Schema for the key-extraction tests: the tables of a small
// shop, a search path of "public", and one user function configured as
// read-only.

import "github.com/shardproxy/shardproxy/planner"

type fakeSchema struct {
	tables   map[string]planner.TableConfig // by schema.name
	columns  map[string][]string            // by schema.name
	keyTypes map[string]string              // by schema.name; int8 when absent
	path     []string
	readOnly map[string]bool // schema.function
}

var (
	_ planner.Schema            = (*fakeSchema)(nil)
	_ planner.ReadOnlyFunctions = (*fakeSchema)(nil)
	_ planner.KeyTypes          = (*fakeSchema)(nil)
)

func (s *fakeSchema) KeyType(t planner.TableConfig) string {
	return s.keyTypes[t.Schema+"."+t.Name]
}

func (s *fakeSchema) Resolve(name, schema string) (planner.TableConfig, bool) {
	if schema != "" {
		t, ok := s.tables[schema+"."+name]
		return t, ok
	}
	for _, p := range s.path {
		if t, ok := s.tables[p+"."+name]; ok {
			return t, true
		}
	}
	return planner.TableConfig{}, false
}

func (s *fakeSchema) Columns(t planner.TableConfig) []string {
	return s.columns[t.Schema+"."+t.Name]
}

func (s *fakeSchema) IsReadOnlyFunction(schema, name string) bool {
	if schema == "" {
		schema = "public"
	}
	return s.readOnly[schema+"."+name]
}

func (s *fakeSchema) add(schema, name string, kind planner.TableKind, key string, cols ...string) {
	s.tables[schema+"."+name] = planner.TableConfig{Schema: schema, Name: name, Kind: kind, Key: key}
	if cols != nil {
		s.columns[schema+"."+name] = cols
	}
}

func shopSchema() *fakeSchema {
	s := &fakeSchema{
		tables:   map[string]planner.TableConfig{},
		columns:  map[string][]string{},
		keyTypes: map[string]string{"public.events": "text", "public.pgbench_accounts": "int4"},
		path:     []string{"public"},
		readOnly: map[string]bool{"public.price_with_tax": true},
	}
	s.add("public", "accounts", planner.Sharded, "id", "id", "name", "email", "country", "balance", "created_at")
	s.add("public", "orders", planner.Sharded, "account_id", "id", "account_id", "amount", "status", "created_at")
	s.add("public", "order_items", planner.Sharded, "account_id", "order_id", "account_id", "sku", "qty")
	s.add("public", "events", planner.Sharded, "tenant", "tenant", "id", "kind", "payload")
	s.add("public", "countries", planner.Reference, "", "code", "name")
	s.add("public", "migrations", planner.Unsharded, "", "version", "applied_at")
	s.add("app", "users", planner.Sharded, "id", "id", "email", "account_id")
	s.add("public", "audit", planner.Sharded, "account_id") // columns not known
	s.add("public", "pgbench_accounts", planner.Sharded, "aid", "aid", "bid", "abalance", "filler")
	return s
}
