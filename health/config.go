package health

// The monitor's configuration, and the one small interface through which
// it reaches backends, so that tests fake a server with a few lines and the
// node decides how to connect (user, TLS, database "postgres").

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/metadata"
)

// Defaults for Config's zero values.
const (
	DefaultInterval    = 500 * time.Millisecond
	DefaultMaxLagBytes = 1 << 20
)

// Config configures a Monitor.
type Config struct {
	// Interval is the time between two polling rounds (default 500ms). A
	// backend's poll, connecting included, is bounded by 4/5 of it, so a
	// hung server costs at most one round.
	Interval time.Duration
	// MaxLagBytes is routing.max_replica_lag: a replica further behind its
	// primary than this gets no reads (default 1 MiB).
	MaxLagBytes int64
	// Connect opens a connection to the server at addr (host:port). The
	// monitor keeps it across rounds and closes it after any failure.
	Connect func(ctx context.Context, addr string) (Querier, error)
	// Map returns the current shard map, read afresh every round: which
	// addresses are primaries and replicas of which shard. Nil means no
	// backends yet.
	Map func() *metadata.Map
	// OnPromoted is called from the polling loop when a replica of shardID
	// is found out of recovery on a newer timeline than the shard's primary
	// (or while the primary is down): once per such change. It should return
	// promptly (the next round waits for it) and must not call PollNow or
	// Close. The node turns it into a map change on the Raft leader
	// (DESIGN.md section 4: primary changes are map changes).
	OnPromoted func(shardID, addr string, timeline uint32)
	// Logger receives state changes; nil discards them.
	Logger *slog.Logger
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	switch {
	case c.Connect == nil:
		return errors.New("health: Config.Connect is nil")
	case c.Map == nil:
		return errors.New("health: Config.Map is nil")
	case c.Interval < 0:
		return fmt.Errorf("health: Config.Interval is negative (%v)", c.Interval)
	case c.MaxLagBytes < 0:
		return fmt.Errorf("health: Config.MaxLagBytes is negative (%d)", c.MaxLagBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MaxLagBytes == 0 {
		c.MaxLagBytes = DefaultMaxLagBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Querier is a connection to one backend, used by one goroutine at a time.
type Querier interface {
	// QueryRow runs sql, which returns exactly one row whose columns are
	// never NULL, and returns the columns in PostgreSQL's text format
	// (booleans are "t" and "f").
	QueryRow(ctx context.Context, sql string) ([]string, error)
	// Close closes the connection; the monitor does not use it afterwards.
	Close(ctx context.Context) error
}

// PgConn adapts a pgconn connection to a Querier; the node's Connect
// typically returns PgConn(pgconn.Connect(ctx, <url of addr, database
// postgres>)).
func PgConn(conn *pgconn.PgConn) Querier { return pgConnQuerier{conn} }

type pgConnQuerier struct{ c *pgconn.PgConn }

var _ Querier = pgConnQuerier{}

func (q pgConnQuerier) QueryRow(ctx context.Context, sql string) ([]string, error) {
	// The simple protocol: one round trip, and no prepared statement to
	// keep on a connection that may be replaced at any round.
	results, err := q.c.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(results) != 1 || len(results[0].Rows) != 1 {
		return nil, fmt.Errorf("health: %q returned no single row", sql)
	}
	row := results[0].Rows[0]
	out := make([]string, len(row))
	for i, v := range row {
		if v == nil {
			return nil, fmt.Errorf("health: %q returned NULL in column %d", sql, i+1)
		}
		out[i] = string(v)
	}
	return out, nil
}

func (q pgConnQuerier) Close(ctx context.Context) error { return q.c.Close(ctx) }
