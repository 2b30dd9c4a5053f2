package node

// Replica health for routing: the monitor polls every backend of the map;
// the router asks it for replicas; a replica found promoted becomes its
// shard's primary by a Raft command of the leader (never by each node on
// its own: two nodes must not write to two primaries).

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/health"
	"github.com/shardproxy/shardproxy/metadata"
)

// newMonitor builds the health monitor; it connects to database
// "postgres" as the first configured backend user (the health functions
// need no privileges).
func newMonitor(cfg *config.Config, n *Node) (*health.Monitor, error) {
	var user, password string
	for _, u := range cfg.Users {
		if !u.Trust || user == "" {
			user, password = u.BackendUser, u.BackendPassword
			if !u.Trust {
				break
			}
		}
	}
	return health.New(health.Config{
		Interval:    cfg.Routing.HealthInterval,
		MaxLagBytes: cfg.Routing.MaxReplicaLag,
		Map:         func() *metadata.Map { return n.router.Map() },
		Connect: func(ctx context.Context, addr string) (health.Querier, error) {
			host, port, err := splitAddr(addr)
			if err != nil {
				return nil, err
			}
			pc, err := pgconn.ParseConfig("")
			if err != nil {
				return nil, err
			}
			pc.Host, pc.Port, pc.Database, pc.User, pc.Password = host, port, "postgres", user, password
			pc.TLSConfig, pc.Fallbacks = nil, nil
			pc.ConnectTimeout = 2 * time.Second
			conn, err := pgconn.ConnectConfig(ctx, pc)
			if err != nil {
				return nil, err
			}
			return health.PgConn(conn), nil
		},
		OnPromoted: n.onPromoted,
		Logger:     n.log,
	})
}

// onPromoted makes a promoted replica its shard's primary, if this node
// leads (every node's monitor sees it; only the leader's command counts).
func (n *Node) onPromoted(shardID, addr string, timeline uint32) {
	if !n.storeOpen.Load() || !n.store.IsLeader() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.store.Apply(ctx, metadata.Command{Type: metadata.CmdSetPrimary, ShardID: shardID, Host: addr})
	if err != nil {
		n.log.Warn("making a promoted replica the primary failed", "shard", shardID, "addr", addr, "err", err)
		return
	}
	n.log.Warn("a replica was promoted: it is now the shard's primary", "shard", shardID, "addr", addr, "timeline", timeline)
}

// replicaPicker adapts the monitor to the router.
type replicaPicker struct{ m *health.Monitor }

func (p replicaPicker) PickReplica(shardID string, minLSN uint64) (string, bool) {
	return p.m.PickReplica(shardID, health.LSN(minLSN))
}

func (p replicaPicker) Begin(addr string) func() { return p.m.Begin(addr) }

func (p replicaPicker) MarkDown(addr string) { p.m.MarkDown(addr) }

// configHasReplicas: the monitor runs only when some shard has replicas
// (without them there is no read to route, and its connections would only
// count against the users' own).
func configHasReplicas(cfg *config.Config) bool {
	for _, sh := range cfg.Shards {
		if len(sh.Replicas) > 0 {
			return true
		}
	}
	return false
}

// promotionLoop runs reconcilePromotions every health round.
func (n *Node) promotionLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.Routing.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.reconcilePromotions(ctx)
		}
	}
}

// reconcilePromotions is the slow path behind onPromoted: the monitor
// reports a promotion once, and a node that was not leading then (just
// started, or elected after the primary's machine died with the old
// leader) must still act on it. The leader looks at the monitor's states
// every recovery round.
func (n *Node) reconcilePromotions(ctx context.Context) {
	if !n.storeOpen.Load() || !n.store.IsLeader() || !configHasReplicas(n.cfg) {
		return
	}
	m := n.store.Map()
	if m == nil {
		return
	}
	backends := n.monitor.Backends()
	for _, b := range backends {
		if b.Role != health.RoleReplica || b.State != health.StatePromoted {
			continue
		}
		sh, ok := m.Shard(b.Shard)
		if !ok || !slices.Contains(sh.Replicas, b.Addr) {
			continue
		}
		var primary *health.BackendStatus
		for i := range backends {
			if backends[i].Addr == sh.Primary {
				primary = &backends[i]
			}
		}
		if primary != nil && primary.State != health.StateDown && primary.Timeline >= b.Timeline {
			continue // the primary is alive on the same or a newer timeline
		}
		n.onPromoted(b.Shard, b.Addr, b.Timeline)
	}
}
