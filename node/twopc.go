package node

// How two-phase-commit recovery reaches the shards: listing prepared
// transactions as any configured user, settling each as its owner. (The
// decisions themselves live in Raft: cluster.go.)

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/twopc"
)

// pgConn adapts a pgx connection to what recovery needs.
type pgConn struct{ c *pgx.Conn }

func (p pgConn) Exec(ctx context.Context, sql string) (string, error) {
	tag, err := p.c.Exec(ctx, sql)
	return tag.String(), err
}

func (p pgConn) Close(ctx context.Context) error { return p.c.Close(ctx) }

// recoveryShards tells recovery how to reach every shard primary: listing
// runs as any configured backend user; resolving as the transaction's
// owner (COMMIT PREPARED must run as its owner or a superuser).
func recoveryShards(cfg *config.Config, m func() *metadata.Map) func() []twopc.ShardAccess {
	creds := map[string]string{}
	var anyUser, anyPassword string
	for _, u := range cfg.Users {
		if _, ok := creds[u.BackendUser]; !ok {
			creds[u.BackendUser] = u.BackendPassword
		}
		if anyUser == "" {
			anyUser, anyPassword = u.BackendUser, u.BackendPassword
		}
	}
	connect := func(ctx context.Context, addr, database, user, password string) (*pgx.Conn, error) {
		cc, err := pgx.ParseConfig("")
		if err != nil {
			return nil, err
		}
		host, port, err := splitAddr(addr)
		if err != nil {
			return nil, err
		}
		cc.Host, cc.Port, cc.Database, cc.User, cc.Password = host, port, database, user, password
		cc.TLSConfig, cc.Fallbacks = nil, nil
		cc.ConnectTimeout = 10 * time.Second
		return pgx.ConnectConfig(ctx, cc)
	}
	return func() []twopc.ShardAccess {
		var out []twopc.ShardAccess
		for _, sh := range m().Shards {
			addr := sh.Primary
			id := sh.ID
			out = append(out, twopc.ShardAccess{
				ID: id,
				List: func(ctx context.Context) ([]twopc.Prepared, error) {
					c, err := connect(ctx, addr, "postgres", anyUser, anyPassword)
					if err != nil {
						return nil, err
					}
					defer c.Close(context.Background())
					rows, err := c.Query(ctx, twopc.ListPreparedSQL)
					if err != nil {
						return nil, err
					}
					return pgx.CollectRows(rows, func(r pgx.CollectableRow) (twopc.Prepared, error) {
						var p twopc.Prepared
						err := r.Scan(&p.GID, &p.Database, &p.Owner)
						return p, err
					})
				},
				Connect: func(ctx context.Context, shardID, database, owner string) (twopc.Conn, error) {
					pw, ok := creds[owner]
					if !ok {
						return nil, fmt.Errorf("no configured user logs into the shards as %q, the owner of a prepared transaction", owner)
					}
					c, err := connect(ctx, addr, database, owner, pw)
					if err != nil {
						return nil, err
					}
					return pgConn{c}, nil
				},
			})
		}
		return out
	}
}

func splitAddr(addr string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port of %s: %w", addr, err)
	}
	return host, uint16(p), nil
}
