package catalog

// The snapshot's types and the pure lookups on them: a table's columns by
// name, a table by qualified name, and a name resolved along a search_path.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Column is one column of a table as PostgreSQL reports it. Dropped columns
// are never listed.
type Column struct {
	Name        string
	TypeOID     uint32 // pg_attribute.atttypid (a domain's own OID for a domain)
	BaseTypeOID uint32 // TypeOID with domains followed to their base type; TypeOID otherwise
	TypeName    string // format_type(atttypid, atttypmod), such as "numeric(10,2)"
	NotNull     bool   // attnotnull
	HasDefault  bool   // a DEFAULT expression (serial included; not a generated column)
	Identity    bool   // GENERATED ... AS IDENTITY (attidentity <> '')
	Generated   bool   // GENERATED ALWAYS AS (...) STORED (attgenerated <> '')
	Serial      bool   // the default is nextval(...): serial, bigserial or an explicit one
}

// Kind is the kind of a described relation, pg_class.relkind's letter.
type Kind byte

// The kinds a snapshot describes.
const (
	KindTable       Kind = 'r'
	KindPartitioned Kind = 'p'
	KindView        Kind = 'v'
	KindMatView     Kind = 'm'
	KindForeign     Kind = 'f'
)

// String names k as PostgreSQL's messages do.
func (k Kind) String() string {
	switch k {
	case KindTable:
		return "table"
	case KindPartitioned:
		return "partitioned table"
	case KindView:
		return "view"
	case KindMatView:
		return "materialized view"
	case KindForeign:
		return "foreign table"
	}
	return fmt.Sprintf("relkind %q", byte(k))
}

func (k Kind) valid() bool {
	switch k {
	case KindTable, KindPartitioned, KindView, KindMatView, KindForeign:
		return true
	}
	return false
}

// Table is a described relation: a table, a view or the like, with its
// columns in order (by attnum, dropped columns left out). Tables reached
// through a Snapshot are shared and must not be modified.
type Table struct {
	Schema  string
	Name    string
	OID     uint32 // pg_class.oid on the server it was loaded from; 0 when built by hand
	Kind    Kind
	Columns []Column
}

// QualifiedName is t's schema and name.
func (t *Table) QualifiedName() Name { return Name{Schema: t.Schema, Name: t.Name} }

// Column returns the column called name (compared exactly: identifiers are
// already case-folded by the parser) and its index in Columns, which is its
// position in an INSERT without a column list.
func (t *Table) Column(name string) (Column, int, bool) {
	// A linear scan: tables have tens of columns, plans are cached, and a
	// Table built by hand needs no index to be usable.
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return t.Columns[i], i, true
		}
	}
	return Column{}, -1, false
}

// Name is a schema-qualified relation name.
type Name struct {
	Schema string
	Name   string
}

// String is n for messages, each part double-quoted unless it is a plain
// lower-case identifier.
func (n Name) String() string { return quoteIdent(n.Schema) + "." + quoteIdent(n.Name) }

// Snapshot is the schema of one database at one moment. It is immutable and
// safe for concurrent use; a refresh builds a new one.
type Snapshot struct {
	version uint64
	tables  map[Name]*Table
	others  map[Name]struct{} // relations that exist but are not described
	sorted  []*Table          // by schema, then name (bytewise)
}

// NewSnapshot builds a snapshot from tables (copied) and the names of
// other relations: relations that exist but are not described (a sequence,
// an index, a pg_catalog table), which matter only because they can shadow
// a table of the same name later in a search_path. Names must be unique
// across both, and column names within a table.
func NewSnapshot(version uint64, tables []*Table, others []Name) (*Snapshot, error) {
	copied := make([]*Table, 0, len(tables))
	for _, t := range tables {
		if t == nil {
			return nil, errors.New("catalog: nil table")
		}
		c := *t
		c.Columns = slices.Clone(t.Columns)
		copied = append(copied, &c)
	}
	return build(version, copied, others)
}

// build makes a snapshot of tables without copying them.
func build(version uint64, tables []*Table, others []Name) (*Snapshot, error) {
	s := &Snapshot{
		version: version,
		tables:  make(map[Name]*Table, len(tables)),
		others:  make(map[Name]struct{}, len(others)),
		sorted:  tables,
	}
	seen := make(map[string]struct{})
	for _, t := range tables {
		n := t.QualifiedName()
		if n.Schema == "" || n.Name == "" {
			return nil, fmt.Errorf("catalog: table %s: empty schema or name", n)
		}
		if !t.Kind.valid() {
			return nil, fmt.Errorf("catalog: table %s: %s is not a kind a snapshot describes", n, t.Kind)
		}
		if _, dup := s.tables[n]; dup {
			return nil, fmt.Errorf("catalog: table %s listed twice", n)
		}
		clear(seen)
		for i, c := range t.Columns {
			if c.Name == "" {
				return nil, fmt.Errorf("catalog: table %s: column %d has no name", n, i+1)
			}
			if _, dup := seen[c.Name]; dup {
				return nil, fmt.Errorf("catalog: table %s: column %q listed twice", n, c.Name)
			}
			seen[c.Name] = struct{}{}
		}
		s.tables[n] = t
	}
	for _, n := range others {
		if n.Schema == "" || n.Name == "" {
			return nil, fmt.Errorf("catalog: relation %s: empty schema or name", n)
		}
		if _, dup := s.tables[n]; dup {
			return nil, fmt.Errorf("catalog: relation %s is also a described table", n)
		}
		s.others[n] = struct{}{}
	}
	slices.SortFunc(s.sorted, func(a, b *Table) int {
		if c := strings.Compare(a.Schema, b.Schema); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return s, nil
}

// Version is the version the snapshot was built with.
func (s *Snapshot) Version() uint64 { return s.version }

// Len is the number of described tables.
func (s *Snapshot) Len() int { return len(s.sorted) }

// Tables returns the described tables ordered by schema, then name.
func (s *Snapshot) Tables() []*Table { return slices.Clone(s.sorted) }

// Table returns the described table schema.name.
func (s *Snapshot) Table(schema, name string) (*Table, bool) {
	t, ok := s.tables[Name{Schema: schema, Name: name}]
	return t, ok
}

// Resolve finds the table an unqualified name means along searchPath
// (schema names as ParseSearchPath returns them), the way PostgreSQL does:
// the first schema in the path that has a relation of that name wins;
// "$user" stands for the schema named like user (skipped when user is
// empty); pg_catalog is searched first unless the path lists it; schemas
// that do not exist are skipped. ok is false when no schema has the name,
// and also when the first relation found is not a described table (a
// pg_catalog table, a sequence, ...): the name then does not mean a table
// of this snapshot, even if a later schema has one.
func (s *Snapshot) Resolve(searchPath []string, user, name string) (*Table, bool) {
	if !slices.Contains(searchPath, "pg_catalog") {
		if t, exists := s.lookup("pg_catalog", name); exists {
			return t, t != nil
		}
	}
	for _, schema := range searchPath {
		if schema == "$user" {
			if user == "" {
				continue
			}
			schema = user
		}
		if t, exists := s.lookup(schema, name); exists {
			return t, t != nil
		}
	}
	return nil, false
}

// lookup reports whether schema.name exists and returns its table when the
// snapshot describes it.
func (s *Snapshot) lookup(schema, name string) (*Table, bool) {
	n := Name{Schema: schema, Name: name}
	if t, ok := s.tables[n]; ok {
		return t, true
	}
	_, ok := s.others[n]
	return nil, ok
}

// quoteIdent double-quotes id unless it is a plain lower-case identifier
// (keywords are not recognised: this is for messages only).
func quoteIdent(id string) string {
	plain := id != ""
	for i, r := range id {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			plain = false
			break
		}
	}
	if plain {
		return id
	}
	return `"` + strings.ReplaceAll(id, `"`, `""`) + `"`
}
