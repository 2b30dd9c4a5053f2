package admin

// POST /admin/v1/split: the API's one write. Only the Raft leader can apply
// it, but a user may ask any node, so a follower forwards the request to
// the leader (one hop: a forwarded request is never forwarded again, so two
// nodes with different ideas of the leader cannot bounce it between them)
// and then waits until it has applied the new map itself, so the user's
// next GET on the same node shows the split.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/metadata"
)

// forwardedHeader marks a write a follower forwarded; its value is the
// follower's id.
const forwardedHeader = "Shardproxy-Forwarded-By"

// maxRequestBody bounds a request body; a split request is a few dozen
// bytes.
const maxRequestBody = 64 << 10

// pollInterval is how often a Cluster without MapWaiter is asked for its
// map while a forwarded write waits to become visible here.
const pollInterval = 5 * time.Millisecond

func (s *Server) handleSplit(w http.ResponseWriter, r *http.Request) {
	req, err := decodeSplitRequest(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeError(w, &apiFailure{http.StatusBadRequest, codeBadRequest, err.Error()})
		return
	}
	forwardedBy := r.Header.Get(forwardedHeader)
	self := s.cluster.NodeID()

	// Forward straight away when we know we are not the leader: computing
	// a range's middle from a follower's map could use a stale range.
	if l := s.cluster.Leader(); forwardedBy == "" && l.ID != "" && l.ID != self {
		s.forward(r.Context(), w, req, l)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	res, err := s.applySplit(ctx, req)
	var notLeader *metadata.ErrNotLeader
	var f *apiFailure
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.As(err, &notLeader) && notLeader.Leader.ID == "":
		writeError(w, &apiFailure{http.StatusServiceUnavailable, codeNoLeader, "no node is the Raft leader (the cluster has no quorum, or is electing one); retry shortly"})
	case errors.As(err, &notLeader) && forwardedBy != "":
		writeError(w, &apiFailure{http.StatusServiceUnavailable, codeNoLeader,
			fmt.Sprintf("%s forwarded this write to %s, which is not the leader (leadership is moving to %s); retry shortly", forwardedBy, self, notLeader.Leader.ID)})
	case errors.As(err, &notLeader):
		s.forward(r.Context(), w, req, notLeader.Leader)
	case errors.As(err, &f):
		writeError(w, f)
	case errors.Is(err, metadata.ErrRejected):
		writeError(w, &apiFailure{http.StatusConflict, codeRejected, err.Error()})
	default:
		writeError(w, &apiFailure{http.StatusInternalServerError, codeInternal, "applying the split: " + err.Error()})
	}
}

// decodeSplitRequest reads exactly one JSON object with exactly one of its
// two fields set, and checks that field parses.
func decodeSplitRequest(body io.Reader) (SplitRequest, error) {
	const shape = `the body must be a JSON object such as {"at": "42"} or {"range_lo": "-9223372036854775808"}`
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req SplitRequest
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return SplitRequest{}, fmt.Errorf("the body is larger than %d bytes", tooBig.Limit)
		}
		return SplitRequest{}, fmt.Errorf("%s: %w", shape, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return SplitRequest{}, fmt.Errorf("%s, and nothing after it", shape)
	}
	switch {
	case req.At != "" && req.RangeLo != "":
		return SplitRequest{}, errors.New(`give "at" or "range_lo", not both`)
	case req.At != "":
		_, err := parseID("at", req.At)
		return req, err
	case req.RangeLo != "":
		_, err := parseID("range_lo", req.RangeLo)
		return req, err
	default:
		return SplitRequest{}, errors.New(`give "at" (a keyspace position to cut at) or "range_lo" (the start of a range to cut in the middle)`)
	}
}

// applySplit turns req into a command against this node's map, applies
// it, and describes the result from the map that includes it.
func (s *Server) applySplit(ctx context.Context, req SplitRequest) (*SplitResult, error) {
	m := s.cluster.Map()
	if m == nil {
		return nil, errNoMap
	}
	at, err := splitPoint(m, req)
	if err != nil {
		return nil, err
	}
	index, err := s.cluster.Apply(ctx, metadata.Command{Type: metadata.CmdSplitRange, At: at})
	if err != nil {
		return nil, err
	}
	// Apply returns once this node has applied the command, so this map
	// includes the cut (and perhaps later changes, which is fine: the
	// version is then one that includes it).
	m = s.cluster.Map()
	if m == nil {
		return nil, fmt.Errorf("the split was applied at log index %d, but this node then had no map", index)
	}
	res := &SplitResult{At: formatID(at), MapVersion: m.Version, Index: index}
	res.Lower, res.Upper = halves(m, at)
	return res, nil
}

// splitPoint is where req cuts the keyspace. The checks repeat the state
// machine's so the user gets a message naming the range rather than a bare
// rejection; the state machine still decides.
func splitPoint(m *metadata.Map, req SplitRequest) (keyspace.ID, error) {
	if req.At != "" {
		at, err := parseID("at", req.At)
		if err != nil {
			return 0, &apiFailure{http.StatusBadRequest, codeBadRequest, err.Error()}
		}
		for _, a := range m.Ranges {
			if a.Range.Lo == at {
				return 0, &apiFailure{http.StatusConflict, codeRejected, fmt.Sprintf("%d already starts the range %s: there is nothing to split there", at, a.Range)}
			}
		}
		return at, nil
	}
	lo, err := parseID("range_lo", req.RangeLo)
	if err != nil {
		return 0, &apiFailure{http.StatusBadRequest, codeBadRequest, err.Error()}
	}
	for _, a := range m.Ranges {
		if a.Range.Lo != lo {
			continue
		}
		mid, ok := middle(a.Range)
		if !ok {
			return 0, &apiFailure{http.StatusConflict, codeRejected, fmt.Sprintf("the range %s holds a single position and cannot be split", a.Range)}
		}
		return mid, nil
	}
	return 0, &apiFailure{http.StatusConflict, codeRejected, fmt.Sprintf("no range starts at %d (map version %d); list them with `shardproxy admin ranges`", lo, m.Version)}
}

// middle is the first position of the upper half when r is cut in two
// halves whose sizes differ by at most one (the lower half is the smaller).
// It works on offsets from -2^63, where the keyspace is [0, 2^64) and
// order is unsigned order; r's size may be 2^64, so it computes with the
// offset of r's last position instead of its end.
func middle(r keyspace.Range) (keyspace.ID, bool) {
	const flip = 1 << 63
	lo := uint64(r.Lo) ^ flip
	last := uint64(1<<64 - 1)
	if !r.ToEnd {
		last = (uint64(r.Hi) ^ flip) - 1
	}
	span := last - lo // size - 1
	half := span/2 + span&1
	if half == 0 {
		return 0, false
	}
	return keyspace.ID((lo + half) ^ flip), true
}

// halves are the two ranges either side of at in m, nil where m no longer
// has them.
func halves(m *metadata.Map, at keyspace.ID) (lower, upper *RangeInfo) {
	for _, a := range m.Ranges {
		switch {
		case a.Range.Lo == at:
			ri := rangeInfo(a)
			upper = &ri
		case !a.Range.ToEnd && a.Range.Hi == at:
			ri := rangeInfo(a)
			lower = &ri
		}
	}
	return lower, upper
}

// forward sends req to the leader and relays its answer; on success it
// first waits for this node to apply the new map. ctx is the request's.
func (s *Server) forward(ctx context.Context, w http.ResponseWriter, req SplitRequest, leader metadata.NodeInfo) {
	if leader.HTTPAddr == "" {
		writeError(w, &apiFailure{http.StatusServiceUnavailable, codeLeaderUnreachable,
			fmt.Sprintf("the leader %s has no HTTP address in the node directory, so this node cannot forward the write; send it to the leader", leader.ID)})
		return
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	res, err := s.peer(leader.HTTPAddr).split(fctx, req, s.cluster.NodeID())
	var apiErr *APIError
	switch {
	case errors.Is(err, ErrUnauthorized):
		// The user's token was good here; passing the 401 on would tell
		// them otherwise.
		writeError(w, &apiFailure{http.StatusBadGateway, codeInternal,
			fmt.Sprintf("the leader %s at %s refused this node's admin token: every node needs the same admin_token", leader.ID, leader.HTTPAddr)})
		return
	case errors.As(err, &apiErr):
		// The leader's own refusal, passed on as it said it.
		code := apiErr.Code
		if code == "" {
			code = codeInternal
		}
		writeJSON(w, apiErr.Status, errorBody{Error: apiErr.Message, Code: code})
		return
	case err != nil:
		s.log.Debug("admin: forwarding to the leader failed", "leader", leader.ID, "addr", leader.HTTPAddr, "err", err)
		msg := fmt.Sprintf("this node forwarded the write to the leader %s at %s, which did not answer (%s)", leader.ID, leader.HTTPAddr, reason(err))
		if fctx.Err() != nil {
			// The request may have reached the leader before the deadline.
			msg += "; the split may still be applied: look with `shardproxy admin ranges` before retrying"
		}
		writeError(w, &apiFailure{http.StatusServiceUnavailable, codeLeaderUnreachable, msg})
		return
	}
	wctx, wcancel := context.WithTimeout(ctx, s.cfg.WaitTimeout)
	defer wcancel()
	if err := s.waitMap(wctx, res.MapVersion); err != nil {
		res.Warning = fmt.Sprintf("the split is committed, but %s had not applied map version %d after %s; it will shortly", s.cluster.NodeID(), res.MapVersion, s.cfg.WaitTimeout)
	}
	writeJSON(w, http.StatusOK, res)
}

// waitMap returns once this node's map is at least version.
func (s *Server) waitMap(ctx context.Context, version uint64) error {
	if m := s.cluster.Map(); m != nil && m.Version >= version {
		return nil
	}
	if mw, ok := s.cluster.(MapWaiter); ok {
		return mw.WaitMap(ctx, version)
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if m := s.cluster.Map(); m != nil && m.Version >= version {
				return nil
			}
		}
	}
}
