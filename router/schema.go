package router

// What the planner knows of a database: the configured tables (from the
// map) joined with the catalog read from the first shard. The catalog is
// loaded once per database and again after DDL through this node (the
// schema epoch moved), so a table created a moment ago is known to the
// next statement that names it.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/catalog"
	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/planner"
)

// catalogs caches one catalog snapshot per database.
type catalogs struct {
	byDB sync.Map // database -> *catalogEntry
}

type catalogEntry struct {
	mu      sync.Mutex // one load at a time per database
	current atomic.Pointer[loadedCatalog]
}

// loadedCatalog is a snapshot and the schema epoch it was loaded in.
type loadedCatalog struct {
	snap  *catalog.Snapshot
	epoch uint64
}

// catalogSnapshot returns the database's catalog as of the current schema
// epoch, loading it with the client's backend credentials when it is
// missing or older than the last DDL seen. The common case, nothing
// changed, takes no lock: it runs for every statement planned.
func (r *Router) catalogSnapshot(ctx context.Context, database string, cred Credentials) (*catalog.Snapshot, error) {
	v, ok := r.catalogs.byDB.Load(database)
	if !ok {
		v, _ = r.catalogs.byDB.LoadOrStore(database, &catalogEntry{})
	}
	e := v.(*catalogEntry)
	epoch := r.schemaEpoch.Load()
	if c := e.current.Load(); c != nil && c.epoch >= epoch {
		return c.snap, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.current.Load(); c != nil && c.epoch >= epoch {
		return c.snap, nil // loaded meanwhile by another session
	}
	m := r.Map()
	// The primary first; a replica serves as well (the catalog is read
	// only), so planning goes on while a primary is down.
	addrs := append([]string{m.Shards[0].Primary}, m.Shards[0].Replicas...)
	var lastErr error
	for _, addr := range addrs {
		snap, err := loadCatalog(ctx, addr, database, cred, r.cfg.ConnectTimeout, epoch)
		if err == nil {
			e.current.Store(&loadedCatalog{snap: snap, epoch: epoch})
			return snap, nil
		}
		lastErr = err
	}
	if c := e.current.Load(); c != nil {
		// Better a catalog from before the last DDL than no plan at all;
		// the next statement tries again.
		r.log.Warn("reading the catalog failed; planning with the previous one", "db", database, "err", lastErr)
		return c.snap, nil
	}
	return nil, fmt.Errorf("reading the catalog of %s: %w", m.Shards[0].ID, lastErr)
}

func loadCatalog(ctx context.Context, addr, database string, cred Credentials, timeout time.Duration, epoch uint64) (*catalog.Snapshot, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.Database = host, port, database
	cfg.User, cfg.Password = cred.User, cred.Password
	cfg.ConnectTimeout = timeout
	cfg.TLSConfig = nil
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return catalog.Load(ctx, conn, epoch)
}

// schemaView is a planner.Schema for one session: the map's tables, the
// catalog and the session's search_path.
type schemaView struct {
	m          *metadata.Map
	snap       *catalog.Snapshot
	searchPath []string
	rawPath    string
	user       string
}

var _ planner.Schema = (*schemaView)(nil)

func (v *schemaView) Resolve(name, schema string) (planner.TableConfig, bool) {
	if schema == "" {
		if v.snap != nil {
			if t, ok := v.snap.Resolve(v.searchPath, v.user, name); ok {
				schema = t.Schema
			}
		}
		if schema == "" {
			// Not in the catalog (yet): a configured table of the first
			// schema on the path that has one, as CREATE TABLE would
			// place it.
			for _, sp := range v.searchPath {
				if sp == "$user" {
					sp = v.user
				}
				if _, ok := v.configured(sp, name); ok {
					schema = sp
					break
				}
			}
		}
		if schema == "" {
			return planner.TableConfig{Name: name}, false
		}
	}
	tc := planner.TableConfig{Schema: schema, Name: name}
	if t, ok := v.configured(schema, name); ok {
		switch {
		case t.Reference:
			tc.Kind = planner.Reference
		default:
			tc.Kind, tc.Key = planner.Sharded, t.Key
		}
		return tc, true
	}
	if v.snap != nil {
		if _, ok := v.snap.Table(schema, name); ok {
			return tc, true
		}
	}
	return tc, false
}

func (v *schemaView) configured(schema, name string) (metadata.Table, bool) {
	for _, t := range v.m.Tables {
		if t.Name == name && t.Schema == schema {
			return t, true
		}
	}
	return metadata.Table{}, false
}

func (v *schemaView) Columns(t planner.TableConfig) []string {
	if v.snap == nil {
		return nil
	}
	ct, ok := v.snap.Table(t.Schema, t.Name)
	if !ok {
		return nil
	}
	cols := make([]string, len(ct.Columns))
	for i, c := range ct.Columns {
		cols[i] = c.Name
	}
	return cols
}

// KeyType names the key column's base type as the catalog spells it;
// "int8" when the table is not created yet.
func (v *schemaView) KeyType(t planner.TableConfig) string {
	if v.snap == nil || t.Key == "" {
		return "int8"
	}
	ct, ok := v.snap.Table(t.Schema, t.Name)
	if !ok {
		return "int8"
	}
	c, _, ok := ct.Column(t.Key)
	if !ok {
		return "int8"
	}
	return typeNameOfOID(c.BaseTypeOID)
}

// typeNameOfOID names the key types the router can hash.
func typeNameOfOID(oid uint32) string {
	switch oid {
	case 20:
		return "int8"
	case 21:
		return "int2"
	case 23:
		return "int4"
	case 25:
		return "text"
	case 1043:
		return "varchar"
	case 1042:
		return "bpchar"
	case 19:
		return "name"
	case 2950:
		return "uuid"
	}
	return fmt.Sprintf("oid %d", oid)
}
