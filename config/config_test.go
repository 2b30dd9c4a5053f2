package config_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
)

// env makes a hermetic lookupEnv from a map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeFile creates a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// minimal is the smallest configuration that validates.
const minimal = `
users: [{name: app, password: app}]
shards: [{id: s1, primary: "127.0.0.1:15432"}]
`

// withMinimal returns the default configuration plus what minimal adds.
func withMinimal() *config.Config {
	c := config.Default()
	c.Users = []config.User{{Name: "app", Password: "app", BackendUser: "app", BackendPassword: "app"}}
	c.Shards = []config.Shard{{ID: "s1", Primary: "127.0.0.1:15432"}}
	return c
}

// TestDesignExample parses the example of DESIGN.md section 9, less the keys
// whose features are not built yet (raft, tables, routing, admin_token).
func TestDesignExample(t *testing.T) {
	dir := t.TempDir()
	cert := writeFile(t, dir, "server.crt", "cert")
	key := writeFile(t, dir, "server.key", "key")
	yaml := `
listen: 127.0.0.1:6432          # Postgres protocol
http_listen: 127.0.0.1:9187     # admin API, /metrics, /healthz, /readyz
data_dir: ./shardproxy-data     # Raft log and snapshots, 2PC decisions before Raft exists
node_id: n1
tls: {cert: ` + cert + `, key: ` + key + `}     # client side; optional
backend_tls: {mode: disable}    # or require / verify-full with ca
users:                          # clients authenticate against these (SCRAM-SHA-256)
  - {name: app, password: app}                       # logs into backends as app/app
  - {name: regress, trust: true}                     # no password asked; backends must trust it
  - {name: admin, password: secret, admin: true}     # may use the admin console and API
  - {name: svc, password_env: SVC_PW, backend_user: app, backend_password_env: APP_PW}
shards:                         # every shard serves the same database names and roles
  - {id: s1, primary: 127.0.0.1:15432, replicas: [127.0.0.1:15433]}
  - {id: s2, primary: 127.0.0.1:15442, replicas: [127.0.0.1:15443]}
pool:
  mode: transaction               # or session
  size: 20                        # server connections per backend, database and user, per node
limits: {max_client_connections: 10000, query_timeout: 0, idle_transaction_timeout: 0, client_login_timeout: 15s}
`
	got, err := config.Parse([]byte(yaml), env(map[string]string{"SVC_PW": "svc-secret", "APP_PW": "app"}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.TLS = &config.TLS{Cert: cert, Key: key}
	want.Users = []config.User{
		{Name: "app", Password: "app", BackendUser: "app", BackendPassword: "app"},
		{Name: "regress", Trust: true, BackendUser: "regress"},
		{Name: "admin", Password: "secret", Admin: true, BackendUser: "admin", BackendPassword: "secret"},
		{Name: "svc", Password: "svc-secret", BackendUser: "app", BackendPassword: "app"},
	}
	want.Shards = []config.Shard{
		{ID: "s1", Primary: "127.0.0.1:15432", Replicas: []string{"127.0.0.1:15433"}},
		{ID: "s2", Primary: "127.0.0.1:15442", Replicas: []string{"127.0.0.1:15443"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestDefaults(t *testing.T) {
	d := config.Default()
	for _, c := range []struct {
		name     string
		got, exp any
	}{
		{"listen", d.Listen, "127.0.0.1:6432"},
		{"http_listen", d.HTTPListen, "127.0.0.1:9187"},
		{"data_dir", d.DataDir, "./shardproxy-data"},
		{"node_id", d.NodeID, "n1"},
		{"tls", d.TLS, (*config.TLS)(nil)},
		{"backend_tls.mode", d.BackendTLS.Mode, "disable"},
		{"pool.mode", d.Pool.Mode, "transaction"},
		{"pool.size", d.Pool.Size, 20},
		{"pool.wait_timeout", d.Pool.WaitTimeout, 30 * time.Second},
		{"pool.server_idle_timeout", d.Pool.ServerIdleTimeout, 10 * time.Minute},
		{"pool.server_lifetime", d.Pool.ServerLifetime, time.Hour},
		{"pool.prepared_statements", d.Pool.PreparedStatementsPerServer, 1000},
		{"pool.defer_begin", d.Pool.DeferBegin, true},
		{"limits.max_client_connections", d.Limits.MaxClientConnections, 10000},
		{"limits.query_timeout", d.Limits.QueryTimeout, time.Duration(0)},
		{"limits.idle_transaction_timeout", d.Limits.IdleTransactionTimeout, time.Duration(0)},
		{"limits.client_login_timeout", d.Limits.ClientLoginTimeout, 15 * time.Second},
		{"limits.max_message_size", d.Limits.MaxMessageSize, int64(64 << 20)},
		{"limits.max_merge_buffer", d.Limits.MaxMergeBuffer, int64(256 << 20)},
		{"limits.shutdown_timeout", d.Limits.ShutdownTimeout, 30 * time.Second},
		{"limits.tcp_keepalive", d.Limits.TCPKeepalive, 15 * time.Second},
		{"log.level", d.Log.Level, "info"},
		{"log.format", d.Log.Format, "text"},
	} {
		if !reflect.DeepEqual(c.got, c.exp) {
			t.Errorf("default %s = %v, want %v", c.name, c.got, c.exp)
		}
	}

	// A file that leaves every section out, or names a section with no
	// value, gets exactly the defaults.
	for name, yaml := range map[string]string{
		"absent":         minimal,
		"empty sections": minimal + "pool:\nlimits:\nlog:\ntls:\nbackend_tls:\nlisten:\n",
		"empty mappings": minimal + "pool: {}\nlimits: {}\nlog: {}\nbackend_tls: {}\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := config.Parse([]byte(yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := withMinimal(); !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestValues(t *testing.T) {
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", "ca")
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(c *config.Config) any // returns the value to compare
		want  any
	}{
		{"duration", "pool: {wait_timeout: 1m30s}", func(c *config.Config) any { return c.Pool.WaitTimeout }, 90 * time.Second},
		{"zero duration as number", "limits: {tcp_keepalive: 0}", func(c *config.Config) any { return c.Limits.TCPKeepalive }, time.Duration(0)},
		{"zero duration as text", `limits: {shutdown_timeout: "0"}`, func(c *config.Config) any { return c.Limits.ShutdownTimeout }, time.Duration(0)},
		{"size plain", "limits: {max_message_size: 1048576}", func(c *config.Config) any { return c.Limits.MaxMessageSize }, int64(1 << 20)},
		{"size MB", "limits: {max_message_size: 64MB}", func(c *config.Config) any { return c.Limits.MaxMessageSize }, int64(64 << 20)},
		{"size MiB", "limits: {max_message_size: 64MiB}", func(c *config.Config) any { return c.Limits.MaxMessageSize }, int64(64 << 20)},
		{"size kB", "limits: {max_message_size: 512kB}", func(c *config.Config) any { return c.Limits.MaxMessageSize }, int64(512 << 10)},
		{"size with space", `limits: {max_message_size: "1 MB"}`, func(c *config.Config) any { return c.Limits.MaxMessageSize }, int64(1 << 20)},
		{"size bytes", "limits: {max_message_size: 8192B}", func(c *config.Config) any { return c.Limits.MaxMessageSize }, int64(8192)},
		{"session pool", "pool: {mode: session, size: 1, prepared_statements: 1}", func(c *config.Config) any { return c.Pool }, config.Pool{
			Mode: "session", Size: 1, WaitTimeout: 30 * time.Second, ServerIdleTimeout: 10 * time.Minute, ServerLifetime: time.Hour, PreparedStatementsPerServer: 1, DeferBegin: true}},
		{"log", "log: {level: debug, format: json}", func(c *config.Config) any { return c.Log }, config.Log{Level: "debug", Format: "json"}},
		{"verify-full", "backend_tls: {mode: verify-full, ca: " + ca + "}", func(c *config.Config) any { return c.BackendTLS }, config.BackendTLS{Mode: "verify-full", CA: ca}},
		{"verify-full system roots", "backend_tls: {mode: verify-full}", func(c *config.Config) any { return c.BackendTLS }, config.BackendTLS{Mode: "verify-full"}},
		{"listen all interfaces", `listen: ":6432"`, func(c *config.Config) any { return c.Listen }, ":6432"},
		{"http disabled", `http_listen: ""`, func(c *config.Config) any { return c.HTTPListen }, ""},
		{"numeric password", "users: [{name: app, password: 1234}]", func(c *config.Config) any { return c.Users[0].Password }, "1234"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := tc.yaml + "\n"
			if !strings.Contains(yaml, "users:") {
				yaml += "users: [{name: app, password: app}]\n"
			}
			yaml += `shards: [{id: s1, primary: "127.0.0.1:15432"}]` + "\n"
			c, err := config.Parse([]byte(yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.check(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMergeKey(t *testing.T) {
	yaml := `
users:
  - &base {name: app, password: app, backend_user: shared}
  - {<<: *base, name: other}
shards: [{id: s1, primary: "127.0.0.1:15432"}]
`
	c, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Users[1]; got.Name != "other" || got.BackendUser != "shared" || got.Password != "app" {
		t.Errorf("merged user = %+v", got)
	}
	_, err = config.Parse([]byte(minimal+"x: &x {sizee: 1}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `unknown key "x"`) {
		t.Errorf("err = %v", err)
	}
	_, err = config.Parse([]byte(minimal+"pool: {<<: {sizee: 1}}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `unknown key "pool.sizee"`) {
		t.Errorf("merged unknown key: err = %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	cert := writeFile(t, dir, "c.crt", "c")
	key := writeFile(t, dir, "c.key", "k")
	vars := map[string]string{
		"SHARDPROXY_LISTEN":                          "0.0.0.0:7432",
		"SHARDPROXY_HTTP_LISTEN":                     "0.0.0.0:9999",
		"SHARDPROXY_DATA_DIR":                        "/var/lib/shardproxy",
		"SHARDPROXY_NODE_ID":                         "shardproxy-2",
		"SHARDPROXY_TLS_CERT":                        cert,
		"SHARDPROXY_TLS_KEY":                         key,
		"SHARDPROXY_BACKEND_TLS_MODE":                "require",
		"SHARDPROXY_POOL_MODE":                       "session",
		"SHARDPROXY_POOL_SIZE":                       "7",
		"SHARDPROXY_POOL_WAIT_TIMEOUT":               "5s",
		"SHARDPROXY_POOL_SERVER_IDLE_TIMEOUT":        "1m",
		"SHARDPROXY_POOL_SERVER_LIFETIME":            "2h",
		"SHARDPROXY_POOL_PREPARED_STATEMENTS":        "50",
		"SHARDPROXY_POOL_DEFER_BEGIN":                "false",
		"SHARDPROXY_LIMITS_MAX_CLIENT_CONNECTIONS":   "100",
		"SHARDPROXY_LIMITS_QUERY_TIMEOUT":            "10s",
		"SHARDPROXY_LIMITS_IDLE_TRANSACTION_TIMEOUT": "20s",
		"SHARDPROXY_LIMITS_CLIENT_LOGIN_TIMEOUT":     "3s",
		"SHARDPROXY_LIMITS_MAX_MESSAGE_SIZE":         "1MiB",
		"SHARDPROXY_LIMITS_SHUTDOWN_TIMEOUT":         "1m",
		"SHARDPROXY_LIMITS_TCP_KEEPALIVE":            "0",
		"SHARDPROXY_LOG_LEVEL":                       "warn",
		"SHARDPROXY_LOG_FORMAT":                      "json",
	}
	// The file sets some of the same keys: the environment wins.
	yaml := minimal + "listen: 127.0.0.1:1\npool: {size: 3, mode: transaction}\nlog: {level: debug}\n"
	got, err := config.Parse([]byte(yaml), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	want := withMinimal()
	want.Listen = "0.0.0.0:7432"
	want.HTTPListen = "0.0.0.0:9999"
	want.DataDir = "/var/lib/shardproxy"
	want.NodeID = "shardproxy-2"
	want.TLS = &config.TLS{Cert: cert, Key: key}
	want.BackendTLS.Mode = "require"
	want.Pool = config.Pool{Mode: "session", Size: 7, WaitTimeout: 5 * time.Second,
		ServerIdleTimeout: time.Minute, ServerLifetime: 2 * time.Hour, PreparedStatementsPerServer: 50}
	want.Limits = config.Limits{MaxClientConnections: 100, QueryTimeout: 10 * time.Second,
		IdleTransactionTimeout: 20 * time.Second, ClientLoginTimeout: 3 * time.Second,
		MaxMessageSize: 1 << 20, MaxMergeBuffer: 256 << 20, ShutdownTimeout: time.Minute, TCPKeepalive: 0}
	want.Log = config.Log{Level: "warn", Format: "json"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}

	t.Run("empty variable is unset", func(t *testing.T) {
		got, err := config.Parse([]byte(minimal), env(map[string]string{"SHARDPROXY_LISTEN": "", "SHARDPROXY_POOL_SIZE": ""}))
		if err != nil {
			t.Fatal(err)
		}
		if want := withMinimal(); !reflect.DeepEqual(got, want) {
			t.Errorf("got\n%+v\nwant\n%+v", got, want)
		}
	})
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "pw", "from-file\n")
	crlfFile := writeFile(t, dir, "pw-crlf", "crlf\r\n")
	backendFile := writeFile(t, dir, "backend-pw", "backend-from-file")
	vars := env(map[string]string{"PW": "from-env", "BPW": "backend-from-env"})
	for _, tc := range []struct {
		name string
		user string
		want config.User
	}{
		{"password_env", "{name: u, password_env: PW}",
			config.User{Name: "u", Password: "from-env", BackendUser: "u", BackendPassword: "from-env"}},
		{"password_file trims newline", "{name: u, password_file: " + pwFile + "}",
			config.User{Name: "u", Password: "from-file", BackendUser: "u", BackendPassword: "from-file"}},
		{"password_file trims crlf", "{name: u, password_file: " + crlfFile + "}",
			config.User{Name: "u", Password: "crlf", BackendUser: "u", BackendPassword: "crlf"}},
		{"backend_password_env", "{name: u, password: p, backend_user: b, backend_password_env: BPW}",
			config.User{Name: "u", Password: "p", BackendUser: "b", BackendPassword: "backend-from-env"}},
		{"backend_password_file", "{name: u, password: p, backend_password_file: " + backendFile + "}",
			config.User{Name: "u", Password: "p", BackendUser: "u", BackendPassword: "backend-from-file"}},
		{"backend_password", "{name: u, password: p, backend_password: q}",
			config.User{Name: "u", Password: "p", BackendUser: "u", BackendPassword: "q"}},
		{"trust keeps backend password empty", "{name: u, trust: true}",
			config.User{Name: "u", Trust: true, BackendUser: "u"}},
		{"trust with backend password", "{name: u, trust: true, backend_password: q}",
			config.User{Name: "u", Trust: true, BackendUser: "u", BackendPassword: "q"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "users: [" + tc.user + "]\nshards: [{id: s1, primary: \"h:1\"}]\n"
			c, err := config.Parse([]byte(yaml), vars)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Users[0], tc.want) {
				t.Errorf("got %+v, want %+v", c.Users[0], tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	cert := writeFile(t, dir, "c.crt", "c")
	empty := writeFile(t, dir, "empty", "\n")
	missing := filepath.Join(dir, "missing")
	shard := "shards: [{id: s1, primary: \"h:1\"}]\n"
	user := "users: [{name: app, password: app}]\n"
	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		want []string // each must appear in the error
	}{
		// Keys.
		{"unknown top-level key", minimal + "listn: x\n", nil, []string{`line 4: unknown key "listn"`}},
		{"unknown nested key", minimal + "pool:\n  sizee: 3\n", nil, []string{`line 5: unknown key "pool.sizee"`}},
		{"unknown key in list", "users: [{name: a, passwrd: x}]\n" + shard, nil, []string{`line 1: unknown key "users[0].passwrd"`}},
		{"unknown shard key", user + "shards:\n  - {id: s1, primary: \"h:1\", replica: [\"h:2\"]}\n", nil, []string{`line 3: unknown key "shards[0].replica"`}},
		{"keys are case sensitive", minimal + "Listen: x\n", nil, []string{`unknown key "Listen"`}},
		{"all unknown keys reported", minimal + "a: 1\nb: 2\n", nil, []string{`unknown key "a"`, `unknown key "b"`}},
		{"section not a mapping", minimal + "pool: 3\n", nil, []string{`line 4: key "pool" must be a mapping`}},
		{"list not a list", user + "shards: {id: s1}\n", nil, []string{`key "shards" must be a list`}},
		{"scalar not a scalar", minimal + "listen: [a, b]\n", nil, []string{`key "listen" must be a single value`}},
		{"document not a mapping", "- a\n", nil, []string{"the configuration must be a mapping"}},
		{"duplicate key", minimal + "pool: {size: 1}\npool: {size: 2}\n", nil, []string{`line 5: key "pool" is already defined at line 4`}},
		{"duplicate key without value", minimal + "users:\n", nil, []string{`line 4: key "users" is already defined at line 2`}},
		{"duplicate nested key", minimal + "pool: {size: 1, size: 2}\n", nil, []string{`key "pool.size" is already defined`}},
		{"bad yaml", "users: [\n", nil, []string{"config: yaml:"}},

		// Keys whose features are not built yet.
		{"raft peers without listen", minimal + "raft:\n  peers: [n1@127.0.0.1:7001, n2@127.0.0.1:7002, n3@127.0.0.1:7003]\n", nil, []string{`raft.listen: is required with raft.peers`}},
		{"raft peers without self", minimal + "raft:\n  listen: 127.0.0.1:7001\n  peers: [n2@127.0.0.1:7002, n3@127.0.0.1:7003, n4@127.0.0.1:7004]\n", nil, []string{`does not list this node (node_id "n1")`}},
		{"raft two peers", minimal + "raft:\n  listen: 127.0.0.1:7001\n  peers: [n1@127.0.0.1:7001, n2@127.0.0.1:7002]\n", nil, []string{`two voters cannot survive`}},
		{"raft bad peer", minimal + "raft:\n  listen: 127.0.0.1:7001\n  peers: [n1-127.0.0.1:7001]\n", nil, []string{`is not id@host:port`}},
		{"routing lag negative", minimal + "routing: {max_replica_lag: -1}\n", nil, []string{`max_replica_lag`}},
		{"routing interval too short", minimal + "routing: {health_interval: 1ms}\n", nil, []string{`routing.health_interval: must be at least 10ms`}},
		{"admin token twice", minimal + "admin_token: a\nadmin_token_env: T\n", nil, []string{`use only one of admin_token`}},
		{"admin token env unset", minimal + "admin_token_env: T\n", nil, []string{`environment variable T is not set`}},
		{"table without key", minimal + "tables:\n  - {name: accounts}\n", nil, []string{`tables[0]: table accounts needs a key column (sharded) or reference: true`}},
		{"table key and reference", minimal + "tables:\n  - {name: c, key: id, reference: true}\n", nil, []string{`either sharded (key) or reference, not both`}},
		{"table twice", minimal + "tables:\n  - {name: a, key: id}\n  - {name: a, schema: public, reference: true}\n", nil, []string{`table public.a is already configured at tables[0]`}},
		{"table unknown field", minimal + "tables:\n  - {name: a, shard_key: id}\n", nil, []string{`shard_key`}},

		// Values that do not decode.
		{"pool size not a number", minimal + "pool: {size: lots}\n", nil, []string{`config: pool.size: "lots" is not a valid int`}},
		{"pool size from env", minimal, map[string]string{"SHARDPROXY_POOL_SIZE": "x"}, []string{`pool.size: "x" is not a valid int`}},
		{"trust not a bool", "users: [{name: a, trust: sure}]\n" + shard, nil, []string{`users[0].trust: "sure" is not a valid bool`}},
		{"duration without unit", minimal + "pool: {wait_timeout: 30}\n", nil, []string{"pool.wait_timeout: 30 has no unit"}},
		{"bad duration", minimal + "limits: {query_timeout: soon}\n", nil, []string{`limits.query_timeout: "soon" is not a duration`}},
		{"bad duration from env", minimal, map[string]string{"SHARDPROXY_LIMITS_TCP_KEEPALIVE": "15"}, []string{`limits.tcp_keepalive: "15" is not a duration`}},
		{"bad size unit", minimal + "limits: {max_message_size: 64XB}\n", nil, []string{`limits.max_message_size: "64XB" is not a size`}},
		{"fractional size", minimal + "limits: {max_message_size: 1.5MB}\n", nil, []string{`"1.5MB" is not a size`}},
		{"negative size", minimal + "limits: {max_message_size: -1}\n", nil, []string{"size -1 is negative"}},
		{"huge size", minimal + "limits: {max_message_size: 99999999TB}\n", nil, []string{"is too large"}},

		// Validation.
		{"bad pool mode", minimal + "pool: {mode: statement}\n", nil, []string{`pool.mode: "statement" is not one of transaction, session`}},
		{"pool size zero", minimal + "pool: {size: 0}\n", nil, []string{"pool.size: must be at least 1, got 0"}},
		{"negative prepared statements", minimal + "pool: {prepared_statements: -1}\n", nil, []string{"pool.prepared_statements: must be at least 1"}},
		{"no prepared statements", minimal + "pool: {prepared_statements: 0}\n", nil, []string{"pool.prepared_statements: must be at least 1"}},
		{"negative gomaxprocs", minimal + "runtime: {gomaxprocs: -1}\n", nil, []string{"runtime.gomaxprocs: must be 0"}},
		{"unknown plan cache mode", minimal + "pool: {plan_cache_mode: custom}\n", nil, []string{"pool.plan_cache_mode: \"custom\" is not one of"}},
		{"negative duration", minimal + "pool: {server_lifetime: -1s}\n", nil, []string{"pool.server_lifetime: must not be negative"}},
		{"max client connections zero", minimal + "limits: {max_client_connections: 0}\n", nil, []string{"limits.max_client_connections: must be at least 1"}},
		{"message size too small", minimal + "limits: {max_message_size: 1kB}\n", nil, []string{"limits.max_message_size: must be between"}},
		{"message size too large", minimal + "limits: {max_message_size: 1GiB}\n", nil, []string{"limits.max_message_size: must be between"}},
		{"unknown log level", minimal + "log: {level: verbose}\n", nil, []string{`log.level: "verbose" is not one of debug, info, warn, error`}},
		{"unknown log format", minimal + "log: {format: xml}\n", nil, []string{`log.format: "xml" is not one of text, json`}},
		{"bad listen", minimal + "listen: localhost\n", nil, []string{`listen: "localhost" is not host:port`}},
		{"bad listen port", minimal + "listen: 127.0.0.1:99999\n", nil, []string{"listen:", `port "99999" is not a number`}},
		{"bad http listen", minimal + "http_listen: 9187\n", nil, []string{"http_listen:", "is not host:port"}},
		{"empty listen from file", minimal + "listen: \"\"\n", nil, []string{"listen:"}},
		{"empty data dir", minimal + "data_dir: \"\"\n", nil, []string{"data_dir: must not be empty"}},
		{"bad node id", minimal + "node_id: \"n 1\"\n", nil, []string{`node_id: "n 1" may contain only`}},
		{"no users", shard, nil, []string{"users: at least one user is required"}},
		{"no shards", user, nil, []string{"shards: at least one shard is required"}},
		{"duplicate user", "users: [{name: a, password: x}, {name: a, password: y}]\n" + shard, nil, []string{`users[1].name: user "a" is already defined at users[0]`}},
		{"user without name", "users: [{password: x}]\n" + shard, nil, []string{"users[0].name: must not be empty"}},
		{"missing password", "users: [{name: a}]\n" + shard, nil, []string{`users[0]: user "a" has no password`}},
		{"empty password", "users: [{name: a, password: \"\"}]\n" + shard, nil, []string{`user "a" has no password`}},
		{"password and trust", "users: [{name: a, password: x, trust: true}]\n" + shard, nil, []string{`users[0]: user "a": use only one of password, password_env, password_file and trust: true`}},
		{"password and password_env", "users: [{name: a, password: x, password_env: X}]\n" + shard, nil, []string{`use only one of password`}},
		{"two backend passwords", "users: [{name: a, password: x, backend_password: y, backend_password_env: Y}]\n" + shard, nil, []string{`use only one of backend_password, backend_password_env and backend_password_file`}},
		{"password env unset", "users: [{name: a, password_env: NOPE}]\n" + shard, nil, []string{"users[0].password_env: environment variable NOPE is not set"}},
		{"password env empty", "users: [{name: a, password_env: E}]\n" + shard, map[string]string{"E": ""}, []string{"users[0].password_env: environment variable E is empty"}},
		{"backend password env unset", "users: [{name: a, password: x, backend_password_env: NOPE}]\n" + shard, nil, []string{"users[0].backend_password_env: environment variable NOPE is not set"}},
		{"password file missing", "users: [{name: a, password_file: " + missing + "}]\n" + shard, nil, []string{"users[0].password_file:", "no such file"}},
		{"password file empty", "users: [{name: a, password_file: " + empty + "}]\n" + shard, nil, []string{"users[0].password_file:", "is empty"}},
		{"backend password file missing", "users: [{name: a, password: x, backend_password_file: " + missing + "}]\n" + shard, nil, []string{"users[0].backend_password_file:"}},
		{"duplicate shard", user + "shards: [{id: s1, primary: \"h:1\"}, {id: s1, primary: \"h:2\"}]\n", nil, []string{`shards[1].id: shard "s1" is already defined at shards[0]`}},
		{"shard without id", user + "shards: [{primary: \"h:1\"}]\n", nil, []string{"shards[0].id: must not be empty"}},
		{"bad shard id", user + "shards: [{id: \"s/1\", primary: \"h:1\"}]\n", nil, []string{`shards[0].id: "s/1" may contain only`}},
		{"shard without primary", user + "shards: [{id: s1}]\n", nil, []string{`shards[0].primary: "" is not host:port`}},
		{"bad primary", user + "shards: [{id: s1, primary: localhost}]\n", nil, []string{`shards[0].primary: "localhost" is not host:port`}},
		{"primary without host", user + "shards: [{id: s1, primary: \":5432\"}]\n", nil, []string{`shards[0].primary: ":5432" has no host`}},
		{"primary port zero", user + "shards: [{id: s1, primary: \"h:0\"}]\n", nil, []string{"port 0 cannot be dialled"}},
		{"bad replica", user + "shards: [{id: s1, primary: \"h:1\", replicas: [\"h:x\"]}]\n", nil, []string{`shards[0].replicas[0]: "h:x": port "x" is not a number`}},
		{"address used twice", user + "shards: [{id: s1, primary: \"h:1\"}, {id: s2, primary: \"h:1\"}]\n", nil, []string{"shards[1].primary: h:1 is already used by shards[0] (s1)"}},
		{"tls key missing", minimal + "tls: {cert: " + cert + "}\n", nil, []string{"tls.key: is required"}},
		{"tls cert file missing", minimal + "tls: {cert: " + missing + ", key: " + cert + "}\n", nil, []string{"tls.cert:", "no such file"}},
		{"tls cert is a directory", minimal + "tls: {cert: " + dir + ", key: " + cert + "}\n", nil, []string{"tls.cert:", "is a directory"}},
		{"bad backend tls mode", minimal + "backend_tls: {mode: prefer}\n", nil, []string{`backend_tls.mode: "prefer" is not one of disable, require, verify-full`}},
		{"ca without verify", minimal + "backend_tls: {mode: require, ca: " + cert + "}\n", nil, []string{"backend_tls.ca: is only used with mode verify-full"}},
		{"ca file missing", minimal + "backend_tls: {mode: verify-full, ca: " + missing + "}\n", nil, []string{"backend_tls.ca:", "no such file"}},
		{"secret and other problems at once", "users: [{name: a, password_env: NOPE}, {name: b, password: x, trust: true}]\n" + shard + "pool: {size: 0}\n", nil,
			[]string{"users[0].password_env: environment variable NOPE is not set", `users[1]: user "b": use only one of`, "pool.size: must be at least 1"}},
		{"several problems at once", minimal + "pool: {size: 0, mode: x}\nlog: {level: loud}\n", nil, []string{"pool.size", "pool.mode", "log.level"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml), env(tc.env))
			if err == nil {
				t.Fatalf("no error; got %+v", c)
			}
			if c != nil {
				t.Errorf("config returned with an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("error %q does not start with \"config: \"", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "shardproxy.yaml", minimal)
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := withMinimal(); !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v", c, want)
	}

	// Errors name the file and line.
	bad := writeFile(t, dir, "bad.yaml", minimal+"pool:\n  sizee: 1\n")
	_, err = config.Load(bad, nil)
	if want := "config: " + bad + `:5: unknown key "pool.sizee"`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}

	if _, err := config.Load(filepath.Join(dir, "nope.yaml"), nil); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: err = %v", err)
	}

	// No file: defaults and environment only, which cannot name users or
	// shards, so it fails validation and says why.
	_, err = config.Load("", env(map[string]string{"SHARDPROXY_POOL_SIZE": "5"}))
	if err == nil || !strings.Contains(err.Error(), "at least one user") || !strings.Contains(err.Error(), "at least one shard") {
		t.Errorf("no file: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	if err := withMinimal().Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if err := config.Default().Validate(); err == nil {
		t.Error("Default() alone validated; it has no users or shards")
	}
	c := withMinimal()
	c.Users[0].BackendUser = ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "users[0].backend_user: must not be empty") {
		t.Errorf("err = %v", err)
	}
}

func TestLogger(t *testing.T) {
	for _, tc := range []struct {
		log        config.Log
		json       bool
		debugShown bool
		infoShown  bool
	}{
		{config.Log{Level: "info", Format: "text"}, false, false, true},
		{config.Log{Level: "debug", Format: "json"}, true, true, true},
		{config.Log{Level: "warn", Format: "text"}, false, false, false},
		{config.Log{Level: "error", Format: "json"}, true, false, false},
	} {
		t.Run(tc.log.Level+"/"+tc.log.Format, func(t *testing.T) {
			c := config.Default()
			c.Log = tc.log
			var buf bytes.Buffer
			l := c.Logger(&buf)
			l.Debug("d")
			l.Info("i")
			l.Error("e")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			for _, line := range lines {
				if got := json.Valid([]byte(line)); got != tc.json {
					t.Errorf("line %q: json = %v, want %v", line, got, tc.json)
				}
			}
			out := buf.String()
			if got := strings.Contains(out, "DEBUG"); got != tc.debugShown {
				t.Errorf("debug shown = %v, want %v:\n%s", got, tc.debugShown, out)
			}
			if got := strings.Contains(out, "INFO"); got != tc.infoShown {
				t.Errorf("info shown = %v, want %v:\n%s", got, tc.infoShown, out)
			}
			if !strings.Contains(out, "ERROR") {
				t.Errorf("error not shown:\n%s", out)
			}
		})
	}
}
