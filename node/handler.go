package node

// What a client reaches: the admin console for database "shardproxy",
// the router for every other database. Cancel requests go to the router,
// which forwards those of other nodes.

import (
	"context"

	"github.com/shardproxy/shardproxy/console"
	"github.com/shardproxy/shardproxy/metadata"
	"github.com/shardproxy/shardproxy/wire"
)

// consoleDatabase is the database name that reaches the admin console.
const consoleDatabase = "shardproxy"

type handler struct{ n *Node }

var _ wire.Handler = handler{}

func (h handler) Serve(ctx context.Context, c *wire.Conn) error {
	if c.Database == consoleDatabase {
		return console.Serve(ctx, c, consoleSource{h.n})
	}
	return h.n.router.Serve(ctx, c)
}

func (h handler) Cancel(ctx context.Context, pid, secret uint32) {
	h.n.router.Cancel(ctx, pid, secret)
}

// consoleSource adapts the node to what the console shows.
type consoleSource struct{ n *Node }

func (s consoleSource) Map() *metadata.Map { return s.n.router.Map() }

func (s consoleSource) Version() string { return s.n.version }

func (s consoleSource) Pools() []console.PoolRow {
	var out []console.PoolRow
	for _, p := range s.n.router.Pools() {
		out = append(out, console.PoolRow{Database: p.Database, User: p.User, Addr: p.Addr,
			Open: p.Open, Active: p.InUse, Idle: p.Idle})
	}
	return out
}

func (s consoleSource) Nodes() []console.NodeRow {
	if !s.n.storeOpen.Load() {
		return nil
	}
	servers, err := s.n.store.Servers()
	roles := map[string]string{}
	if err == nil {
		for _, sv := range servers {
			switch {
			case sv.Leader:
				roles[sv.ID] = "leader"
			case sv.Voter:
				roles[sv.ID] = "follower"
			default:
				roles[sv.ID] = "nonvoter"
			}
		}
	}
	var out []console.NodeRow
	for _, ni := range s.n.store.Nodes() {
		row := console.NodeRow{NodeInfo: ni, Role: roles[ni.ID]}
		if ni.ID == s.n.cfg.NodeID {
			if m := s.n.router.Map(); m != nil {
				row.MapVersion = m.Version
			}
		}
		out = append(out, row)
	}
	return out
}

// ReplicaState gives SHOW REPLICAS the health monitor's view.
func (s consoleSource) ReplicaState(addr string) (string, int64, bool) {
	if s.n.monitor == nil || !configHasReplicas(s.n.cfg) {
		return "", 0, false
	}
	for _, b := range s.n.monitor.Backends() {
		if b.Addr == addr {
			return string(b.State), b.LagBytes, true
		}
	}
	return "", 0, false
}
