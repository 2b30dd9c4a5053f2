package router

// Fleet-wide cancel. Behind a Kubernetes Service a client's CancelRequest
// lands on any node, usually not the one running its query. The process id
// a client gets names the node that issued it: its top bits are a tag
// derived from the node id; the rest count sessions. A node that receives a
// cancel key it did not issue forwards the request to the nodes whose tag
// the key carries (several when two ids share a tag; the wrong ones find
// no such session and drop it). A node never forwards a key with its own
// tag, so a cancel travels at most one hop.

import (
	"context"
	"encoding/binary"
	"hash/fnv"

	"github.com/shardproxy/shardproxy/backend"
	"github.com/shardproxy/shardproxy/metadata"
)

const (
	nodeTagBits = 10
	pidBits     = 32 - nodeTagBits
	pidMask     = 1<<pidBits - 1
)

// nodeTag is the tag of a node id in the process ids it issues.
func nodeTag(nodeID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(nodeID))
	return h.Sum32() & (1<<nodeTagBits - 1)
}

// issuePID returns the next process id for a session of this node.
func (r *Router) issuePID() uint32 {
	return r.tag<<pidBits | r.nextPID.Add(1)&pidMask
}

// forwardCancel sends a cancel key this node did not issue to the nodes
// that may have; it reports whether it sent any.
func (r *Router) forwardCancel(ctx context.Context, pid, secret uint32) bool {
	if r.cfg.Peers == nil || pid>>pidBits == r.tag {
		return false
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], secret)
	sent := false
	for _, n := range r.cfg.Peers() {
		if n.ID == r.cfg.NodeID || n.PGAddr == "" || nodeTag(n.ID) != pid>>pidBits {
			continue
		}
		if err := backend.SendCancel(ctx, n.PGAddr, pid, b[:]); err != nil {
			r.log.Warn("forwarding a cancel request to another node failed", "node", n.ID, "err", err)
			continue
		}
		sent = true
	}
	return sent
}

// peersFunc lists the cluster's nodes for cancel forwarding.
type peersFunc func() []metadata.NodeInfo
