package node

// The node's member of the Raft group that keeps the shard map. A node
// without raft.peers is a cluster of one: its map still lives in a Raft log
// in data_dir (so it survives restarts and changes only through the admin
// API), on an in-memory transport with short timeouts, since no other
// node can disagree with it.
//
// Writes reach the leader: a follower forwards a command to the leader's
// HTTP address (/internal/v1/apply, with the admin token), which is how
// followers register themselves in the node directory and record
// two-phase-commit decisions.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/metadata"
)

// internalApplyPath is where a leader takes commands from the other nodes;
// internalJoinPath is where it adds a node as a non-voter.
const (
	internalApplyPath = "/internal/v1/apply"
	internalJoinPath  = "/internal/v1/join"
)

// storeConfig builds the Raft store's configuration from the node's.
func storeConfig(cfg *config.Config, seed *metadata.Map, self metadata.NodeInfo, forward func(context.Context, metadata.NodeInfo, metadata.Command) error) (metadata.StoreConfig, error) {
	sc := metadata.StoreConfig{
		NodeID:          cfg.NodeID,
		DataDir:         filepath.Join(cfg.DataDir, "raft"),
		Seed:            seed,
		Self:            self,
		ForwardToLeader: forward,
	}
	peers, err := cfg.Raft.ParsedPeers()
	if err != nil {
		return sc, err
	}
	if cfg.Raft.Listen == "" {
		// A cluster of one: nothing to dial, nobody to wait for.
		_, tr := raft.NewInmemTransport(raft.ServerAddress(cfg.NodeID))
		sc.Transport = tr
		sc.Peers = []metadata.Peer{{ID: cfg.NodeID, Addr: cfg.NodeID}}
		sc.Bootstrap = true
		sc.Tuning = metadata.RaftTuning{HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond}
		return sc, nil
	}
	sc.Bind, sc.Advertise = cfg.Raft.Listen, cfg.Raft.Advertise
	if len(cfg.Raft.Join) > 0 {
		// Not a voter of the founding configuration: the leader adds
		// this node as a non-voter when it asks (joinCluster).
		return sc, nil
	}
	for _, p := range peers {
		sc.Peers = append(sc.Peers, metadata.Peer{ID: p.ID, Addr: p.Addr})
	}
	if len(sc.Peers) == 0 {
		sc.Peers = []metadata.Peer{{ID: cfg.NodeID, Addr: cfg.Raft.Listen}}
	}
	sc.Bootstrap = cfg.Raft.Bootstrap || len(sc.Peers) == 1
	return sc, nil
}

// applyCommand applies c through Raft: here when this node leads, else at
// the leader (one hop; a leader change meanwhile means a retry).
func (n *Node) applyCommand(ctx context.Context, c metadata.Command) (uint64, error) {
	var idx uint64
	err := n.toLeader(ctx, func() (err error) {
		idx, err = n.store.Apply(ctx, c)
		return err
	}, func(leader metadata.NodeInfo) (err error) {
		idx, err = n.forwardApply(ctx, leader, c)
		return err
	})
	return idx, err
}

// toLeader runs local and, while it answers that this node is not the
// leader, forward to the leader it names, waiting while there is none or
// it has just moved (up to 20 tries, 100 ms apart).
func (n *Node) toLeader(ctx context.Context, local func() error, forward func(metadata.NodeInfo) error) error {
	for attempt := 0; ; attempt++ {
		err := local()
		var nl *metadata.ErrNotLeader
		if !errors.As(err, &nl) {
			return err
		}
		if nl.Leader.HTTPAddr != "" {
			err = forward(nl.Leader)
			if err == nil || !errors.Is(err, errLeaderMoved) {
				return err
			}
		}
		if attempt >= 20 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var errLeaderMoved = errors.New("the node asked is no longer the leader")

type applyResponse struct {
	Index uint64 `json:"index"`
	Error string `json:"error,omitempty"`
	// Rejected: the state machine refused the command.
	Rejected bool `json:"rejected,omitempty"`
}

// applyCommands is applyCommand for commands that may be applied twice
// (a retry after a lost leadership proposes them again): applied together
// where this node leads (Store.ApplyAll), forwarded together otherwise.
func (n *Node) applyCommands(ctx context.Context, cmds []metadata.Command) ([]error, error) {
	var results []error
	err := n.toLeader(ctx, func() (err error) {
		results, err = n.store.ApplyAll(ctx, cmds)
		return err
	}, func(leader metadata.NodeInfo) (err error) {
		results, err = n.forwardApplyAll(ctx, leader, cmds)
		return err
	})
	return results, err
}

// applyAllResponse answers a forwarded batch: one applyResponse per
// command applied, and Error when the batch failed as a whole.
type applyAllResponse struct {
	Results []applyResponse `json:"results,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// postToLeader posts body (JSON) to the leader's internal apply endpoint
// and decodes its JSON answer into out.
func (n *Node) postToLeader(ctx context.Context, leader metadata.NodeInfo, body, out any) (int, error) {
	if n.cfg.AdminToken == "" {
		return 0, errors.New("cannot forward to the leader: admin_token is not configured")
	}
	data, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+leader.HTTPAddr+internalApplyPath, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+n.cfg.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("forwarding to the leader %s: %w", leader.ID, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("forwarding to the leader %s: %s: %w", leader.ID, resp.Status, err)
	}
	if resp.StatusCode == http.StatusMisdirectedRequest {
		return resp.StatusCode, errLeaderMoved
	}
	return resp.StatusCode, nil
}

// forwardApply sends c to the leader's internal endpoint.
func (n *Node) forwardApply(ctx context.Context, leader metadata.NodeInfo, c metadata.Command) (uint64, error) {
	var ar applyResponse
	code, err := n.postToLeader(ctx, leader, c, &ar)
	switch {
	case err != nil:
		return 0, err
	case ar.Rejected:
		return 0, fmt.Errorf("%w: %s", metadata.ErrRejected, ar.Error)
	case code != http.StatusOK:
		return 0, fmt.Errorf("the leader %s refused the command: %s", leader.ID, ar.Error)
	}
	return ar.Index, nil
}

// forwardApplyAll sends cmds to the leader's internal endpoint as one
// batch (a JSON array). A leader that predates batches answers 400, and
// the batch fails.
func (n *Node) forwardApplyAll(ctx context.Context, leader metadata.NodeInfo, cmds []metadata.Command) ([]error, error) {
	var ar applyAllResponse
	code, err := n.postToLeader(ctx, leader, cmds, &ar)
	if err != nil {
		return nil, err
	}
	results := make([]error, len(ar.Results))
	for i, r := range ar.Results {
		if r.Rejected {
			results[i] = fmt.Errorf("%w: %s", metadata.ErrRejected, r.Error)
		}
	}
	if code != http.StatusOK {
		return results, fmt.Errorf("the leader %s refused the commands: %s", leader.ID, ar.Error)
	}
	return results, nil
}

// handleInternalApply applies a command another node forwarded, or a
// batch of them (a JSON array).
func (n *Node) handleInternalApply(w http.ResponseWriter, r *http.Request) {
	write := func(code int, ar applyResponse) { writeJSON(w, code, ar) }
	if !n.tokenOK(r) {
		write(http.StatusUnauthorized, applyResponse{Error: "missing or wrong admin token"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		write(http.StatusBadRequest, applyResponse{Error: "reading the command: " + err.Error()})
		return
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		n.applyForwardedBatch(w, r, trimmed)
		return
	}
	var c metadata.Command
	if err := json.Unmarshal(body, &c); err != nil {
		write(http.StatusBadRequest, applyResponse{Error: "bad command: " + err.Error()})
		return
	}
	idx, err := n.store.Apply(r.Context(), c)
	switch {
	case err == nil:
		write(http.StatusOK, applyResponse{Index: idx})
	case errors.Is(err, metadata.ErrRejected):
		write(http.StatusConflict, applyResponse{Error: err.Error(), Rejected: true})
	default:
		write(applyFailureStatus(err), applyResponse{Error: err.Error()})
	}
}

func (n *Node) applyForwardedBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	var cmds []metadata.Command
	if err := json.Unmarshal(body, &cmds); err != nil {
		writeJSON(w, http.StatusBadRequest, applyAllResponse{Error: "bad commands: " + err.Error()})
		return
	}
	results, err := n.store.ApplyAll(r.Context(), cmds)
	ar := applyAllResponse{Results: make([]applyResponse, len(results))}
	for i, res := range results {
		if res != nil {
			ar.Results[i] = applyResponse{Error: res.Error(), Rejected: errors.Is(res, metadata.ErrRejected)}
		}
	}
	code := http.StatusOK
	if err != nil {
		code, ar.Error = applyFailureStatus(err), err.Error()
	}
	writeJSON(w, code, ar)
}

// applyFailureStatus is the status of a forwarded apply that failed other
// than by a rejection: 421 sends the caller to the new leader.
func applyFailureStatus(err error) int {
	var nl *metadata.ErrNotLeader
	if errors.As(err, &nl) {
		return http.StatusMisdirectedRequest
	}
	return http.StatusServiceUnavailable
}

// tokenOK checks the bearer token in constant time.
func (n *Node) tokenOK(r *http.Request) bool {
	if n.cfg.AdminToken == "" {
		return false
	}
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) < len(prefix) || h[:len(prefix)] != prefix {
		return false
	}
	got := sha256.Sum256([]byte(h[len(prefix):]))
	want := sha256.Sum256([]byte(n.cfg.AdminToken))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// storeCluster adapts the store to the admin API.
type storeCluster struct{ n *Node }

func (c storeCluster) NodeID() string                          { return c.n.cfg.NodeID }
func (c storeCluster) Map() *metadata.Map                      { return c.n.store.Map() }
func (c storeCluster) AppliedIndex() uint64                    { return c.n.store.AppliedIndex() }
func (c storeCluster) Nodes() []metadata.NodeInfo              { return c.n.store.Nodes() }
func (c storeCluster) Servers() ([]metadata.ServerInfo, error) { return c.n.store.Servers() }
func (c storeCluster) Leader() metadata.NodeInfo               { return c.n.store.Leader() }
func (c storeCluster) Apply(ctx context.Context, cmd metadata.Command) (uint64, error) {
	return c.n.store.Apply(ctx, cmd)
}

// joinCluster asks the nodes in raft.join (and the leader they name) to
// add this node as a non-voter, until it is part of the cluster.
func (n *Node) joinCluster(ctx context.Context) {
	self := n.selfInfo()
	self.RaftAddr = n.raftAddr()
	for ctx.Err() == nil {
		if n.store.Leader().ID != "" {
			return // in the configuration: the leader talks to us
		}
		for _, addr := range n.cfg.Raft.Join {
			if err := n.askToJoin(ctx, addr, *self); err == nil {
				return
			} else if ctx.Err() == nil {
				n.log.Info("joining the cluster: retrying", "via", addr, "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// askToJoin sends a join request to addr, following one redirect to the
// leader.
func (n *Node) askToJoin(ctx context.Context, addr string, self metadata.NodeInfo) error {
	body, err := json.Marshal(self)
	if err != nil {
		return err
	}
	for hop := 0; hop < 2; hop++ {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, "http://"+addr+internalJoinPath, bytes.NewReader(body))
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Authorization", "Bearer "+n.cfg.AdminToken)
		resp, err := n.httpClient.Do(req)
		if err != nil {
			cancel()
			return err
		}
		var jr joinResponse
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&jr)
		resp.Body.Close()
		cancel()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusMisdirectedRequest && jr.Leader != "":
			addr = jr.Leader
			continue
		}
		return fmt.Errorf("%s: %s", resp.Status, jr.Error)
	}
	return errLeaderMoved
}

type joinResponse struct {
	Error  string `json:"error,omitempty"`
	Leader string `json:"leader_http,omitempty"`
}

// handleInternalJoin adds the asking node as a non-voter (leader only).
func (n *Node) handleInternalJoin(w http.ResponseWriter, r *http.Request) {
	write := func(code int, jr joinResponse) { writeJSON(w, code, jr) }
	if !n.tokenOK(r) {
		write(http.StatusUnauthorized, joinResponse{Error: "missing or wrong admin token"})
		return
	}
	var ni metadata.NodeInfo
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ni); err != nil || ni.ID == "" || ni.RaftAddr == "" {
		write(http.StatusBadRequest, joinResponse{Error: "a join request needs the node's id and raft address"})
		return
	}
	if !n.store.IsLeader() {
		write(http.StatusMisdirectedRequest, joinResponse{Error: "not the leader", Leader: n.store.Leader().HTTPAddr})
		return
	}
	for _, sv := range mustServers(n.store) {
		if sv.ID == ni.ID && sv.Voter {
			// A voter restarting with raft.join by mistake stays a voter.
			write(http.StatusOK, joinResponse{})
			return
		}
	}
	if err := n.store.Join(r.Context(), ni, false); err != nil {
		write(http.StatusServiceUnavailable, joinResponse{Error: err.Error()})
		return
	}
	write(http.StatusOK, joinResponse{})
}

func mustServers(s *metadata.Store) []metadata.ServerInfo {
	sv, _ := s.Servers()
	return sv
}

// writeJSON answers an internal request.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
