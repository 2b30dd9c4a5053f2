package admin

// The HTTP side of the admin API: authentication, routing, error bodies and
// the read-only endpoints. Writes (split) live in split.go because they
// carry the forwarding and wait-for-visibility logic.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shardproxy/shardproxy/metadata"
)

// PathPrefix is where the API lives; mount the Server there:
//
//	mux.Handle(admin.PathPrefix, srv)
const PathPrefix = "/admin/v1/"

// Config configures a Server.
type Config struct {
	// Token is the bearer token every request must carry (admin_token).
	Token string
	// PeerTimeout bounds each other node's answer when status asks it
	// about itself; a node slower than that is shown unreachable.
	// Default 2s.
	PeerTimeout time.Duration
	// WriteTimeout bounds a write: applying it here, or forwarding it to
	// the leader and waiting for its answer. Default 15s.
	WriteTimeout time.Duration
	// WaitTimeout bounds the wait, after a forwarded write, for this node
	// to apply the new map (so a following GET here shows it). Past it the
	// answer carries a warning instead. Default 5s.
	WaitTimeout time.Duration
	// Transport carries requests to other nodes; nil uses a private copy
	// of http.DefaultTransport.
	Transport http.RoundTripper
	// Logger receives forwarding and probing failures at debug level;
	// nil discards them.
	Logger *slog.Logger
}

// Validate reports a configuration the server cannot run with.
func (c Config) Validate() error {
	if c.Token == "" {
		return errors.New("admin: an admin token is required (admin_token, admin_token_env or admin_token_file)")
	}
	if c.PeerTimeout < 0 || c.WriteTimeout < 0 || c.WaitTimeout < 0 {
		return errors.New("admin: timeouts cannot be negative")
	}
	return nil
}

// Server serves the admin API for one node. It is an http.Handler for
// everything under PathPrefix.
type Server struct {
	cfg       Config
	cluster   Cluster
	log       *slog.Logger
	transport http.RoundTripper
	// tokenSum is compared with the hash of the presented token, so the
	// comparison takes the same time whatever the presented token's length.
	tokenSum [sha256.Size]byte
	routes   map[string]route
}

type route struct {
	method string
	handle func(w http.ResponseWriter, r *http.Request)
}

var _ http.Handler = (*Server)(nil)

// NewServer builds the API for the node c describes.
func NewServer(cfg Config, c Cluster) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("admin: no cluster")
	}
	if cfg.PeerTimeout == 0 {
		cfg.PeerTimeout = 2 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 15 * time.Second
	}
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = 5 * time.Second
	}
	s := &Server{cfg: cfg, cluster: c, log: cfg.Logger, transport: cfg.Transport, tokenSum: sha256.Sum256([]byte(cfg.Token))}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.transport == nil {
		s.transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	s.routes = map[string]route{
		PathPrefix + "status": {http.MethodGet, s.handleStatus},
		PathPrefix + "local":  {http.MethodGet, s.handleLocal},
		PathPrefix + "shards": {http.MethodGet, mapView(s, shardList)},
		PathPrefix + "tables": {http.MethodGet, mapView(s, tableList)},
		PathPrefix + "ranges": {http.MethodGet, mapView(s, rangeList)},
		PathPrefix + "split":  {http.MethodPost, s.handleSplit},
	}
	return s, nil
}

// ServeHTTP authenticates, then routes. Authentication comes first so an
// unauthenticated caller learns nothing, not even which paths exist.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, PathPrefix) {
		writeError(w, &apiFailure{http.StatusNotFound, codeNotFound, "no such admin endpoint: " + r.URL.Path})
		return
	}
	if f := s.authenticate(r); f != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="shardproxy admin"`)
		writeError(w, f)
		return
	}
	rt, ok := s.routes[strings.TrimSuffix(r.URL.Path, "/")]
	if !ok {
		writeError(w, &apiFailure{http.StatusNotFound, codeNotFound, "no such admin endpoint: " + r.URL.Path})
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		writeError(w, &apiFailure{http.StatusMethodNotAllowed, codeMethod, r.URL.Path + " takes " + rt.method + ", not " + r.Method})
		return
	}
	rt.handle(w, r)
}

func (s *Server) authenticate(r *http.Request) *apiFailure {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return &apiFailure{http.StatusUnauthorized, codeUnauthorized, "no bearer token in the Authorization header"}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) != 1 {
		return &apiFailure{http.StatusUnauthorized, codeUnauthorized, "the token does not match this node's admin token"}
	}
	return nil
}

// apiFailure is an error with the HTTP status and code it is answered with.
type apiFailure struct {
	status  int
	code    string
	message string
}

func (f *apiFailure) Error() string { return f.message }

func writeError(w http.ResponseWriter, f *apiFailure) {
	writeJSON(w, f.status, errorBody{Error: f.message, Code: f.code})
}

// writeJSON indents, so curl output is readable and the CLI's -o json is
// the API's own text.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only our own types are encoded here; they always marshal.
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encoding the answer: " + err.Error(), Code: codeInternal})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

var errNoMap = &apiFailure{http.StatusServiceUnavailable, codeNoMap, "this node has no shard map yet (it is still joining the cluster or catching up)"}

func (s *Server) handleLocal(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.local())
}

func (s *Server) local() Local {
	servers, err := s.cluster.Servers()
	l := Local{
		ID:           s.cluster.NodeID(),
		Leader:       s.cluster.Leader().ID,
		AppliedIndex: s.cluster.AppliedIndex(),
	}
	l.Role = role(l.ID, servers, err == nil)
	if m := s.cluster.Map(); m != nil {
		v := m.Version
		l.MapVersion = &v
	}
	return l
}

// mapView serves one view of the node's current map (503 before it has
// one).
func mapView[T any](s *Server, view func(*metadata.Map) T) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		m := s.cluster.Map()
		if m == nil {
			writeError(w, errNoMap)
			return
		}
		writeJSON(w, http.StatusOK, view(m))
	}
}

// handleStatus lists the directory and the Raft membership together (a
// node can be in one and not yet, or no longer, in the other) and asks
// every other node about itself at once, so one dead node costs
// PeerTimeout, not PeerTimeout per node.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	self := s.cluster.NodeID()
	servers, serr := s.cluster.Servers()
	st := Status{Node: self, Leader: s.cluster.Leader().ID, Nodes: []NodeStatus{}}
	if serr != nil {
		st.MembershipError = serr.Error()
	}
	byID := map[string]int{}
	inDirectory := map[string]bool{}
	add := func(ns NodeStatus) {
		if i, ok := byID[ns.ID]; ok {
			if st.Nodes[i].RaftAddr == "" {
				st.Nodes[i].RaftAddr = ns.RaftAddr
			}
			return
		}
		byID[ns.ID] = len(st.Nodes)
		st.Nodes = append(st.Nodes, ns)
	}
	for _, n := range s.cluster.Nodes() {
		inDirectory[n.ID] = true
		add(NodeStatus{ID: n.ID, RaftAddr: n.RaftAddr, PGAddr: n.PGAddr, HTTPAddr: n.HTTPAddr})
	}
	for _, sv := range servers {
		add(NodeStatus{ID: sv.ID, RaftAddr: sv.Addr})
	}
	if _, ok := byID[self]; !ok {
		add(NodeStatus{ID: self})
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].ID < st.Nodes[j].ID })

	var wg sync.WaitGroup
	for i := range st.Nodes {
		ns := &st.Nodes[i]
		ns.Role = role(ns.ID, servers, serr == nil)
		switch {
		case ns.ID == self:
			l := s.local()
			ns.Reachable, ns.MapVersion, ns.AppliedIndex = true, l.MapVersion, &l.AppliedIndex
		case ns.HTTPAddr == "" && inDirectory[ns.ID]:
			ns.Error = "it registered no HTTP address (http_listen is off?)"
		case ns.HTTPAddr == "":
			ns.Error = "not in the node directory, so its HTTP address is unknown"
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.probe(r.Context(), ns)
			}()
		}
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, st)
}

// probe fills in what ns says about itself, or why it did not say.
func (s *Server) probe(ctx context.Context, ns *NodeStatus) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PeerTimeout)
	defer cancel()
	l, err := s.peer(ns.HTTPAddr).Local(ctx)
	switch {
	case errors.Is(err, ErrUnauthorized):
		ns.Error = "it refused this node's admin token (every node needs the same admin_token)"
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		ns.Error = fmt.Sprintf("no answer within %s", s.cfg.PeerTimeout)
	case err != nil:
		ns.Error = err.Error()
	case l.ID != ns.ID:
		ns.Error = fmt.Sprintf("the node at %s says it is %q", ns.HTTPAddr, l.ID)
	default:
		ns.Reachable, ns.MapVersion, ns.AppliedIndex = true, l.MapVersion, &l.AppliedIndex
	}
	if ns.Error != "" {
		s.log.Debug("admin: node unreachable", "node", ns.ID, "addr", ns.HTTPAddr, "err", ns.Error)
	}
}

// peer is a client for another node's API, authenticated with our own
// token: the cluster shares one.
func (s *Server) peer(addr string) *Client {
	return &Client{base: baseURL(addr), token: s.cfg.Token, http: &http.Client{Transport: s.transport}}
}
