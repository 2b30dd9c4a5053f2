package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is a node's resolved configuration: defaults applied, environment
// overrides and secrets resolved. Field comments give the YAML key where it is
// not the obvious snake_case of the field name.
type Config struct {
	Listen     string // Postgres protocol; "" is not allowed
	HTTPListen string // admin API and /metrics; "" disables the HTTP server
	DataDir    string
	NodeID     string
	Raft       Raft
	// AdminToken protects the admin API (admin_token, _env or _file);
	// "" leaves /admin/v1/ closed to everyone.
	AdminToken string
	TLS        *TLS // nil: clients cannot use TLS
	BackendTLS BackendTLS
	Users      []User
	Shards     []Shard
	Tables     []Table
	Routing    Routing
	Pool       Pool
	Limits     Limits
	Log        Log
	Runtime    Runtime
}

// Runtime tunes the Go runtime the node runs on.
type Runtime struct {
	// GOMAXPROCS bounds the threads running Go code at once (0: one per
	// CPU the process may use, Go's default). On a machine the proxy
	// shares with PostgreSQL or its clients, 1 measured about a sixth
	// less CPU per transaction (fewer thread hand-offs and wake-ups),
	// throughput within the run-to-run noise; a dedicated proxy host
	// keeps the default.
	GOMAXPROCS int `mapstructure:"gomaxprocs"`
}

// User is a client login. Clients authenticate against Name/Password with
// SCRAM-SHA-256 (or not at all when Trust); the proxy then logs into the
// backends as BackendUser/BackendPassword, so an application's role on the
// shards can differ from the name it uses at the proxy.
type User struct {
	Name     string
	Password string
	Trust    bool // no password asked of the client
	Admin    bool // may use the admin console and API
	// BackendUser defaults to Name, BackendPassword to Password (empty for a
	// trust user: the backends must then trust it too).
	BackendUser     string
	BackendPassword string
}

// Shard is one PostgreSQL primary and its streaming replicas. Addresses are
// host:port; every shard serves the same database names and roles.
type Shard struct {
	ID       string   `mapstructure:"id"`
	Primary  string   `mapstructure:"primary"`
	Replicas []string `mapstructure:"replicas"`
}

// Raft configures the cluster the nodes keep the shard map in. Without
// Peers the node is a cluster of one (its Raft log still lives in
// data_dir, so the map survives restarts).
type Raft struct {
	// Listen is the Raft address (host:port); Advertise is what peers
	// dial (a Kubernetes pod's stable DNS name), default Listen.
	Listen    string `mapstructure:"listen"`
	Advertise string `mapstructure:"advertise"`
	// Peers are the voters of a new cluster as id@host:port, this node
	// included.
	Peers []string `mapstructure:"peers"`
	// Bootstrap: this node starts a new cluster (only one node does).
	Bootstrap bool `mapstructure:"bootstrap"`
	// Join lists admin HTTP addresses (host:port) of existing nodes: a
	// node not among the peers joins through them as a non-voter (it
	// routes but does not vote, so a fleet can grow and shrink freely).
	Join []string `mapstructure:"join"`
}

// Peer is one parsed raft.peers entry.
type Peer struct{ ID, Addr string }

// ParsedPeers returns raft.peers as ids and addresses.
func (r Raft) ParsedPeers() ([]Peer, error) {
	var out []Peer
	for _, p := range r.Peers {
		id, addr, ok := strings.Cut(p, "@")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("raft.peers: %q is not id@host:port", p)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("raft.peers: %q: %v", p, err)
		}
		out = append(out, Peer{ID: id, Addr: addr})
	}
	return out, nil
}

// Routing says where reads go (DESIGN.md section 4).
type Routing struct {
	// MaxReplicaLag: a replica further behind its primary (in WAL bytes)
	// serves no reads until it catches up.
	MaxReplicaLag int64
	// ReadYourWrites: a session's reads see its own committed writes.
	ReadYourWrites bool
	// HealthInterval is how often every backend is polled.
	HealthInterval time.Duration
}

// Table is a configured table: sharded by the hash of Key, or a reference
// table copied on every shard. Tables not listed are unsharded and live on
// the first shard.
type Table struct {
	Name      string `mapstructure:"name"`
	Schema    string `mapstructure:"schema"` // default public
	Key       string `mapstructure:"key"`
	Reference bool   `mapstructure:"reference"`
}

// TLS is the certificate the proxy presents to clients.
type TLS struct {
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// Backend TLS modes, with libpq's sslmode meanings.
const (
	BackendTLSDisable    = "disable"
	BackendTLSRequire    = "require"     // encrypt, do not verify the server
	BackendTLSVerifyFull = "verify-full" // encrypt, verify chain and host name
)

// BackendTLS says how the proxy talks to the shards.
type BackendTLS struct {
	Mode string `mapstructure:"mode"`
	// CA is a PEM bundle for verify-full; empty means the system roots.
	CA string `mapstructure:"ca"`
}

// Pool modes.
const (
	PoolTransaction = "transaction" // a server connection per transaction
	PoolSession     = "session"     // a server connection per client session
)

// Pool sizes and ages the server connections. A zero duration means no limit.
type Pool struct {
	Mode string `mapstructure:"mode"`
	// Size is server connections per backend, database and user, per node.
	Size              int           `mapstructure:"size"`
	WaitTimeout       time.Duration `mapstructure:"wait_timeout"`
	ServerIdleTimeout time.Duration `mapstructure:"server_idle_timeout"`
	ServerLifetime    time.Duration `mapstructure:"server_lifetime"`
	// PreparedStatementsPerServer bounds the LRU of statements the proxy
	// keeps prepared on each server connection. Transaction pooling needs
	// statements prepared on whichever connection serves a client, so the
	// cache cannot be turned off: at least 1.
	PreparedStatementsPerServer int `mapstructure:"prepared_statements"`
	// LiteralParameters: a simple query routed by literal key values
	// runs as a prepared statement with those values as parameters, so
	// the server skips parsing and planning (off by default: it changes
	// what pg_stat_statements and the server log show).
	LiteralParameters bool `mapstructure:"literal_parameters"`
	// DeferBegin: under transaction pooling a bare BEGIN is answered by
	// the proxy and sent with the block's first statement (on by
	// default; now() is then the first statement's time).
	DeferBegin bool `mapstructure:"defer_begin"`
	// PipelineConnections: up to this many of a pool's connections each
	// carry several clients' one-statement reads at once, written back
	// to back, so a server backend finds the next request waiting instead
	// of sleeping between them (0: off). A read may then wait behind
	// another client's statement for up to about 2 ms.
	PipelineConnections int `mapstructure:"pipeline_connections"`
	// PlanCacheMode is the server connections' plan_cache_mode (empty:
	// the server's own). force_custom_plan is the remedy for statements
	// whose generic plan is worse than planning each execution.
	PlanCacheMode string `mapstructure:"plan_cache_mode"`
}

// Limits protect the proxy and the shards from clients. A zero duration means
// no limit.
type Limits struct {
	MaxClientConnections   int
	QueryTimeout           time.Duration
	IdleTransactionTimeout time.Duration
	ClientLoginTimeout     time.Duration
	MaxMessageSize         int64 // bytes; YAML accepts "64MiB", "512kB", plain numbers
	// MaxMergeBuffer bounds the bytes of shard rows one multi-shard
	// statement may hold while the proxy merges them (54000 beyond it).
	MaxMergeBuffer  int64
	ShutdownTimeout time.Duration // how long SIGTERM waits for clients to finish
	TCPKeepalive    time.Duration // keepalive period on client and server sockets; 0 disables
}

// Log levels and formats.
const (
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"

	LogText = "text"
	LogJSON = "json"
)

// Log chooses what the node logs and how.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Bounds on the message size: below a few kilobytes ordinary queries fail in
// confusing ways, and PostgreSQL itself cannot take a message of 1 GiB or more.
const (
	minMessageSize = 4 << 10
	maxMessageSize = 1<<30 - 1
)

// Default returns the configuration used for every key the file leaves out.
// It has no users or shards, so it does not validate on its own.
func Default() *Config {
	return &Config{
		Listen:     "127.0.0.1:6432",
		HTTPListen: "127.0.0.1:9187",
		DataDir:    "./shardproxy-data",
		NodeID:     "n1",
		BackendTLS: BackendTLS{Mode: BackendTLSDisable},
		Pool: Pool{
			Mode:                        PoolTransaction,
			Size:                        20,
			WaitTimeout:                 30 * time.Second,
			ServerIdleTimeout:           10 * time.Minute,
			ServerLifetime:              time.Hour,
			PreparedStatementsPerServer: 1000,
			DeferBegin:                  true,
		},
		Limits: Limits{
			MaxClientConnections: 10000,
			ClientLoginTimeout:   15 * time.Second,
			MaxMessageSize:       64 << 20,
			MaxMergeBuffer:       256 << 20,
			ShutdownTimeout:      30 * time.Second,
			TCPKeepalive:         15 * time.Second,
		},
		Log:     Log{Level: LogInfo, Format: LogText},
		Routing: Routing{MaxReplicaLag: 1 << 20, ReadYourWrites: true, HealthInterval: 500 * time.Millisecond},
	}
}

// Validate reports every problem it finds, each naming its YAML key, so an
// operator fixes the file in one pass rather than one error per restart. It
// checks that the TLS files exist, since a missing certificate found at the
// first client's handshake is much harder to diagnose.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}

	if err := checkListen(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if c.HTTPListen != "" {
		if err := checkListen(c.HTTPListen); err != nil {
			bad("http_listen", "%v", err)
		}
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if err := checkName(c.NodeID); err != nil {
		bad("node_id", "%v", err)
	}

	if c.TLS != nil {
		checkFile(bad, "tls.cert", c.TLS.Cert)
		checkFile(bad, "tls.key", c.TLS.Key)
	}
	switch c.BackendTLS.Mode {
	case BackendTLSDisable, BackendTLSRequire:
		// A CA with a mode that does not verify would let the operator
		// believe the shards' certificates are checked when they are not.
		if c.BackendTLS.CA != "" {
			bad("backend_tls.ca", "is only used with mode %s (mode is %s)", BackendTLSVerifyFull, c.BackendTLS.Mode)
		}
	case BackendTLSVerifyFull:
		if c.BackendTLS.CA != "" {
			checkFile(bad, "backend_tls.ca", c.BackendTLS.CA)
		}
	default:
		bad("backend_tls.mode", "%q is not one of %s, %s, %s", c.BackendTLS.Mode, BackendTLSDisable, BackendTLSRequire, BackendTLSVerifyFull)
	}

	c.validateUsers(bad)
	c.validateShards(bad)
	c.validateTables(bad)
	c.validateRaft(bad)

	switch c.Pool.Mode {
	case PoolTransaction, PoolSession:
	default:
		bad("pool.mode", "%q is not one of %s, %s", c.Pool.Mode, PoolTransaction, PoolSession)
	}
	if c.Pool.Size < 1 {
		bad("pool.size", "must be at least 1, got %d", c.Pool.Size)
	}
	if c.Pool.PipelineConnections < 0 || c.Pool.PipelineConnections >= max(c.Pool.Size, 1) {
		bad("pool.pipeline_connections", "must be from 0 to pool.size - 1 (%d), got %d", max(c.Pool.Size-1, 0), c.Pool.PipelineConnections)
	}
	if c.Pool.PreparedStatementsPerServer < 1 {
		bad("pool.prepared_statements", "must be at least 1 (statements are prepared on server connections), got %d", c.Pool.PreparedStatementsPerServer)
	}
	if c.Runtime.GOMAXPROCS < 0 {
		bad("runtime.gomaxprocs", "must be 0 (one per CPU) or more, got %d", c.Runtime.GOMAXPROCS)
	}
	switch c.Pool.PlanCacheMode {
	case "", "auto", "force_custom_plan", "force_generic_plan":
	default:
		bad("pool.plan_cache_mode", "%q is not one of auto, force_custom_plan, force_generic_plan", c.Pool.PlanCacheMode)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"pool.wait_timeout", c.Pool.WaitTimeout},
		{"pool.server_idle_timeout", c.Pool.ServerIdleTimeout},
		{"pool.server_lifetime", c.Pool.ServerLifetime},
		{"limits.query_timeout", c.Limits.QueryTimeout},
		{"limits.idle_transaction_timeout", c.Limits.IdleTransactionTimeout},
		{"limits.client_login_timeout", c.Limits.ClientLoginTimeout},
		{"limits.shutdown_timeout", c.Limits.ShutdownTimeout},
		{"limits.tcp_keepalive", c.Limits.TCPKeepalive},
	} {
		if d.v < 0 {
			bad(d.key, "must not be negative, got %s", d.v)
		}
	}

	if c.Limits.MaxClientConnections < 1 {
		bad("limits.max_client_connections", "must be at least 1, got %d", c.Limits.MaxClientConnections)
	}
	if c.Limits.MaxMessageSize < minMessageSize || c.Limits.MaxMessageSize > maxMessageSize {
		bad("limits.max_message_size", "must be between %d (4KiB) and %d bytes (1GiB-1), got %d",
			minMessageSize, maxMessageSize, c.Limits.MaxMessageSize)
	}

	if c.Routing.MaxReplicaLag < 0 {
		bad("routing.max_replica_lag", "must not be negative")
	}
	if c.Routing.HealthInterval < 10*time.Millisecond {
		bad("routing.health_interval", "must be at least 10ms, got %s", c.Routing.HealthInterval)
	}
	if c.Limits.MaxMergeBuffer < 1<<20 {
		bad("limits.max_merge_buffer", "must be at least 1MiB, got %d", c.Limits.MaxMergeBuffer)
	}

	switch c.Log.Level {
	case LogDebug, LogInfo, LogWarn, LogError:
	default:
		bad("log.level", "%q is not one of %s, %s, %s, %s", c.Log.Level, LogDebug, LogInfo, LogWarn, LogError)
	}
	switch c.Log.Format {
	case LogText, LogJSON:
	default:
		bad("log.format", "%q is not one of %s, %s", c.Log.Format, LogText, LogJSON)
	}
	return errors.Join(errs...)
}

func (c *Config) validateUsers(bad func(key, format string, args ...any)) {
	if len(c.Users) == 0 {
		bad("users", "at least one user is required")
	}
	seen := make(map[string]int, len(c.Users))
	for i, u := range c.Users {
		key := fmt.Sprintf("users[%d]", i)
		if u.Name == "" {
			bad(key+".name", "must not be empty")
		} else if j, dup := seen[u.Name]; dup {
			bad(key+".name", "user %q is already defined at users[%d]", u.Name, j)
		} else {
			seen[u.Name] = i
		}
		switch {
		case u.Trust && u.Password != "":
			bad(key, "user %q has both trust: true and a password; use one", u.Name)
		case !u.Trust && u.Password == "":
			bad(key, "user %q has no password: set password, password_env or password_file, or trust: true", u.Name)
		}
		if u.BackendUser == "" {
			bad(key+".backend_user", "must not be empty")
		}
	}
}

func (c *Config) validateShards(bad func(key, format string, args ...any)) {
	if len(c.Shards) == 0 {
		bad("shards", "at least one shard is required")
	}
	ids := make(map[string]int, len(c.Shards))
	// Two shards on one server would be one database (the client's database
	// name is used on every backend): rows would be duplicated or lost.
	addrs := make(map[string]string)
	useAddr := func(key, addr, owner string) {
		if err := checkBackendAddr(addr); err != nil {
			bad(key, "%v", err)
			return
		}
		if prev, dup := addrs[addr]; dup {
			bad(key, "%s is already used by %s", addr, prev)
			return
		}
		addrs[addr] = owner
	}
	for i, s := range c.Shards {
		key := fmt.Sprintf("shards[%d]", i)
		if err := checkName(s.ID); err != nil {
			bad(key+".id", "%v", err)
		} else if j, dup := ids[s.ID]; dup {
			bad(key+".id", "shard %q is already defined at shards[%d]", s.ID, j)
		} else {
			ids[s.ID] = i
		}
		useAddr(key+".primary", s.Primary, fmt.Sprintf("shards[%d] (%s)", i, s.ID))
		for j, r := range s.Replicas {
			useAddr(fmt.Sprintf("%s.replicas[%d]", key, j), r, fmt.Sprintf("shards[%d] (%s)", i, s.ID))
		}
	}
}

func (c *Config) validateRaft(bad func(key, format string, args ...any)) {
	r := c.Raft
	if len(r.Peers) == 0 && r.Listen == "" {
		return // a cluster of one
	}
	if r.Listen == "" {
		bad("raft.listen", "is required with raft.peers")
	} else if err := checkListen(r.Listen); err != nil {
		bad("raft.listen", "%v", err)
	}
	peers, err := r.ParsedPeers()
	if err != nil {
		bad("raft.peers", "%v", err)
		return
	}
	self := false
	ids := map[string]bool{}
	for _, p := range peers {
		if ids[p.ID] {
			bad("raft.peers", "node %q is listed twice", p.ID)
		}
		ids[p.ID] = true
		if p.ID == c.NodeID {
			self = true
		}
	}
	if len(peers) > 0 && !self && len(r.Join) == 0 {
		bad("raft.peers", "does not list this node (node_id %q); list it, or give raft.join to join as a non-voter", c.NodeID)
	}
	if self && len(r.Join) > 0 {
		bad("raft.join", "is for nodes that are not among raft.peers")
	}
	if len(r.Join) > 0 && c.AdminToken == "" {
		bad("raft.join", "needs admin_token (the join request carries it)")
	}
	if len(peers) > 1 && c.AdminToken == "" {
		bad("admin_token", "is required with several raft.peers: nodes forward writes to the leader with it")
	}
	if len(peers) == 2 {
		bad("raft.peers", "two voters cannot survive the loss of either; use 1 or 3 or more")
	}
}

func (c *Config) validateTables(bad func(key, format string, args ...any)) {
	seen := map[string]int{}
	for i := range c.Tables {
		t := &c.Tables[i]
		key := fmt.Sprintf("tables[%d]", i)
		if t.Schema == "" {
			t.Schema = "public"
		}
		if t.Name == "" {
			bad(key+".name", "must not be empty")
			continue
		}
		switch {
		case t.Reference && t.Key != "":
			bad(key, "table %s is either sharded (key) or reference, not both", t.Name)
		case !t.Reference && t.Key == "":
			bad(key, "table %s needs a key column (sharded) or reference: true", t.Name)
		}
		qn := t.Schema + "." + t.Name
		if j, dup := seen[qn]; dup {
			bad(key+".name", "table %s is already configured at tables[%d]", qn, j)
		}
		seen[qn] = i
	}
}

// checkName keeps node and shard ids to characters that survive every place
// they end up: Raft peer lists (n1@host:port), SQL hints (/* shard: s1 */),
// metric labels, Kubernetes names.
func checkName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return fmt.Errorf("%q may contain only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// checkListen accepts an empty host (all interfaces) and port 0 (any free
// port, which tests use).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if _, err := parsePort(port); err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	return nil
}

// checkBackendAddr needs a host and a real port: the proxy dials it.
func checkBackendAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	p, err := parsePort(port)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if p == 0 {
		return fmt.Errorf("%q: port 0 cannot be dialled", addr)
	}
	return nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 0 to 65535", s)
	}
	return p, nil
}

func checkFile(bad func(key, format string, args ...any), key, path string) {
	if strings.TrimSpace(path) == "" {
		bad(key, "is required")
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		bad(key, "%v", err)
		return
	}
	if fi.IsDir() {
		bad(key, "%s is a directory, not a file", path)
	}
}
