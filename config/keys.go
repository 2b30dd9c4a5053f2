package config

// This file decides which keys a configuration may contain. The known keys
// are the mapstructure tags of fileConfig (one place, so the checker and the
// decoder cannot disagree); the YAML is walked as a node tree, not a map, so
// an error can name the line.

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// notBuilt lists the documented top-level keys whose features this build does
// not have. Accepting them silently would let an operator believe, say, that
// the admin API is protected by a token or that tables are sharded. Remove an
// entry (and add the key to fileConfig) when its feature lands.
var notBuilt = map[string]string{}

// fileConfig is the configuration as written: secrets by reference, sizes
// as text. Its tags are the set of known keys.
type fileConfig struct {
	Listen         string      `mapstructure:"listen"`
	HTTPListen     string      `mapstructure:"http_listen"`
	DataDir        string      `mapstructure:"data_dir"`
	NodeID         string      `mapstructure:"node_id"`
	Raft           Raft        `mapstructure:"raft"`
	AdminToken     string      `mapstructure:"admin_token"`
	AdminTokenEnv  string      `mapstructure:"admin_token_env"`
	AdminTokenFile string      `mapstructure:"admin_token_file"`
	TLS            *TLS        `mapstructure:"tls"`
	BackendTLS     BackendTLS  `mapstructure:"backend_tls"`
	Users          []fileUser  `mapstructure:"users"`
	Shards         []Shard     `mapstructure:"shards"`
	Tables         []Table     `mapstructure:"tables"`
	Routing        fileRouting `mapstructure:"routing"`
	Pool           Pool        `mapstructure:"pool"`
	Limits         fileLimits  `mapstructure:"limits"`
	Log            Log         `mapstructure:"log"`
	Runtime        Runtime     `mapstructure:"runtime"`
}

type fileUser struct {
	Name                string `mapstructure:"name"`
	Password            string `mapstructure:"password"`
	PasswordEnv         string `mapstructure:"password_env"`
	PasswordFile        string `mapstructure:"password_file"`
	Trust               bool   `mapstructure:"trust"`
	Admin               bool   `mapstructure:"admin"`
	BackendUser         string `mapstructure:"backend_user"`
	BackendPassword     string `mapstructure:"backend_password"`
	BackendPasswordEnv  string `mapstructure:"backend_password_env"`
	BackendPasswordFile string `mapstructure:"backend_password_file"`
}

type fileLimits struct {
	MaxClientConnections   int           `mapstructure:"max_client_connections"`
	QueryTimeout           time.Duration `mapstructure:"query_timeout"`
	IdleTransactionTimeout time.Duration `mapstructure:"idle_transaction_timeout"`
	ClientLoginTimeout     time.Duration `mapstructure:"client_login_timeout"`
	MaxMessageSize         byteSize      `mapstructure:"max_message_size"`
	MaxMergeBuffer         byteSize      `mapstructure:"max_merge_buffer"`
	ShutdownTimeout        time.Duration `mapstructure:"shutdown_timeout"`
	TCPKeepalive           time.Duration `mapstructure:"tcp_keepalive"`
}

type fileRouting struct {
	MaxReplicaLag  byteSize      `mapstructure:"max_replica_lag"`
	ReadYourWrites *bool         `mapstructure:"read_your_writes"`
	HealthInterval time.Duration `mapstructure:"health_interval"`
}

// byteSize marks a field whose YAML value may carry a unit ("64MiB").
type byteSize int64

var fileConfigType = reflect.TypeFor[fileConfig]()

// checkKeys walks the YAML document against fileConfig and reports every
// unknown or not-yet-built key and every value of the wrong shape (a list
// where a single value belongs, and so on), with its line.
func checkKeys(doc *yaml.Node, source string) error {
	var errs []error
	at := func(n *yaml.Node) string {
		if source == "" {
			return fmt.Sprintf("line %d", n.Line)
		}
		return fmt.Sprintf("%s:%d", source, n.Line)
	}
	var walk func(n *yaml.Node, t reflect.Type, path string)
	walk = func(n *yaml.Node, t reflect.Type, path string) {
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			if n.Kind != yaml.MappingNode {
				errs = append(errs, fmt.Errorf("config: %s: %s must be a mapping of keys to values", at(n), displayKey(path)))
				return
			}
			// yaml.v3 refuses a repeated key only when decoding into a
			// map; a node tree keeps both, and the later one would win.
			seen := make(map[string]int)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, val := n.Content[i], n.Content[i+1]
				if line, dup := seen[k.Value]; dup {
					errs = append(errs, fmt.Errorf("config: %s: key %q is already defined at line %d", at(k), joinKey(path, k.Value), line))
					continue
				}
				seen[k.Value] = k.Line
				if k.Value == "<<" { // YAML merge key: check what it merges in
					merge := val
					for merge.Kind == yaml.AliasNode {
						merge = merge.Alias
					}
					if merge.Kind == yaml.SequenceNode {
						for _, m := range merge.Content {
							walk(m, t, path)
						}
					} else {
						walk(merge, t, path)
					}
					continue
				}
				key := joinKey(path, k.Value)
				if path == "" {
					if why, ok := notBuilt[k.Value]; ok {
						errs = append(errs, fmt.Errorf("config: %s: key %q: %s", at(k), key, why))
						continue
					}
				}
				f, ok := fieldByKey(t, k.Value)
				if !ok {
					errs = append(errs, fmt.Errorf("config: %s: unknown key %q", at(k), key))
					continue
				}
				walk(val, f.Type, key)
			}
		case reflect.Slice:
			if n.Kind != yaml.SequenceNode {
				errs = append(errs, fmt.Errorf("config: %s: %s must be a list", at(n), displayKey(path)))
				return
			}
			for i, e := range n.Content {
				walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		default:
			if n.Kind != yaml.ScalarNode {
				errs = append(errs, fmt.Errorf("config: %s: %s must be a single value", at(n), displayKey(path)))
			}
		}
	}

	if doc.Kind == 0 { // empty file
		return nil
	}
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	walk(root, fileConfigType, "")
	return errors.Join(errs...)
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayKey(path string) string {
	if path == "" {
		return "the configuration"
	}
	return fmt.Sprintf("key %q", path)
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tagKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return name
}

// scalarKeys lists the dotted keys an environment variable may override:
// single values outside lists (a list of users has no sensible flat name).
func scalarKeys() []string {
	var keys []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for i := range t.NumField() {
			f := t.Field(i)
			key := joinKey(path, tagKey(f))
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				walk(ft, key)
			case reflect.Slice:
			default:
				keys = append(keys, key)
			}
		}
	}
	walk(fileConfigType, "")
	return keys
}

// scalarValues flattens a fileConfig into dotted keys and values, the shape
// viper's SetDefault wants. Nil pointers (no TLS) are left out, so a default
// never conjures up a section.
func scalarValues(fc *fileConfig) map[string]any {
	out := make(map[string]any)
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			key := joinKey(path, tagKey(f))
			fv := v.Field(i)
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			switch fv.Kind() {
			case reflect.Struct:
				walk(fv, key)
			case reflect.Slice:
			default:
				out[key] = fv.Interface()
			}
		}
	}
	walk(reflect.ValueOf(fc).Elem(), "")
	return out
}

// envName is the variable that overrides key: SHARDPROXY_ and the key in
// upper case with dots as underscores (pool.size -> SHARDPROXY_POOL_SIZE).
func envName(key string) string {
	return "SHARDPROXY_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}
