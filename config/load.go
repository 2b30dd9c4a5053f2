package config

// This file turns bytes into a Config: strict key check, viper for defaults,
// file values and environment overrides (in that order of precedence, lowest
// first), then secrets, then Validate.

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path (none when path is ""), applies defaults
// and SHARDPROXY_* overrides looked up with lookupEnv, resolves secrets and
// validates the result. Pass os.LookupEnv; tests pass a map's lookup so they
// do not depend on the environment they run in.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return parse(data, path, lookupEnv)
}

// Parse is Load for a configuration already in memory.
func Parse(yamlText []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	return parse(yamlText, "", lookupEnv)
}

func parse(data []byte, source string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	where := "config"
	if source != "" {
		where = "config: " + source
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := checkKeys(&doc, source); err != nil {
		return nil, err
	}
	// viper lets a key written with no value ("pool:") hide the defaults of
	// everything under it; an empty section should mean "all defaults".
	if doc.Kind != 0 {
		dropNulls(&doc)
		var err error
		if data, err = yaml.Marshal(&doc); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	overrides, err := envOverrides(lookupEnv)
	if err != nil {
		return nil, err
	}

	v := viper.New()
	v.SetConfigType("yaml")
	defaults := toFile(Default())
	for key, val := range scalarValues(&defaults) {
		v.SetDefault(key, val)
	}
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	for key, val := range overrides {
		v.Set(key, val)
	}
	var fc fileConfig
	hooks := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(durationHook, sizeHook))
	if err := v.UnmarshalExact(&fc, hooks); err != nil {
		return nil, decodeErrors(where, err)
	}

	c, err := fromFile(&fc, lookupEnv)
	if err := errors.Join(err, c.Validate()); err != nil {
		return nil, err
	}
	return c, nil
}

// dropNulls removes keys written without a value, so they mean "the
// default" (write http_listen: "" to turn the HTTP server off).
func dropNulls(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if val := n.Content[i+1]; val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
				continue
			}
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		dropNulls(c)
	}
}

// decodeErrors rewrites mapstructure's report ("decoding failed due to the
// following error(s): 'pool.size' cannot parse value as 'int': ...") into one
// line per key, in the same shape as every other error of this package.
func decodeErrors(where string, err error) error {
	if !hasNested(err) {
		return fmt.Errorf("%s: %w", where, err)
	}
	var out []error
	var walk func(e error)
	walk = func(e error) {
		if de, ok := e.(*mapstructure.DecodeError); ok && !hasNested(de.Unwrap()) {
			msg := de.Unwrap().Error()
			var pe *mapstructure.ParseError
			if errors.As(de.Unwrap(), &pe) {
				msg = fmt.Sprintf("%q is not a valid %s", fmt.Sprint(pe.Value), pe.Expected.Type())
			}
			out = append(out, fmt.Errorf("config: %s: %s", de.Name(), msg))
			return
		}
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range m.Unwrap() {
				walk(e)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil {
			walk(u)
			return
		}
		out = append(out, fmt.Errorf("%s: %w", where, e))
	}
	walk(err)
	return errors.Join(out...)
}

func hasNested(err error) bool {
	var de *mapstructure.DecodeError
	return errors.As(err, &de)
}

// envOverrides collects SHARDPROXY_<KEY> for every scalar key. An empty
// variable counts as unset, as in viper's own AutomaticEnv: a blank value is
// far more often a templating slip than a wish to clear a setting.
func envOverrides(lookupEnv func(string) (string, bool)) (map[string]string, error) {
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(notBuilt)) {
		why := notBuilt[key]
		if val, ok := lookupEnv(envName(key)); ok && val != "" {
			errs = append(errs, fmt.Errorf("config: environment variable %s: key %q: %s", envName(key), key, why))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make(map[string]string)
	for _, key := range scalarKeys() {
		if val, ok := lookupEnv(envName(key)); ok && val != "" {
			out[key] = val
		}
	}
	return out, nil
}

// toFile is the inverse of fromFile for the scalar settings, so Default stays
// the one place defaults are written.
func toFile(c *Config) fileConfig {
	return fileConfig{
		Listen:     c.Listen,
		HTTPListen: c.HTTPListen,
		DataDir:    c.DataDir,
		NodeID:     c.NodeID,
		TLS:        c.TLS,
		BackendTLS: c.BackendTLS,
		Pool:       c.Pool,
		Limits: fileLimits{
			MaxClientConnections:   c.Limits.MaxClientConnections,
			QueryTimeout:           c.Limits.QueryTimeout,
			IdleTransactionTimeout: c.Limits.IdleTransactionTimeout,
			ClientLoginTimeout:     c.Limits.ClientLoginTimeout,
			MaxMessageSize:         byteSize(c.Limits.MaxMessageSize),
			MaxMergeBuffer:         byteSize(c.Limits.MaxMergeBuffer),
			ShutdownTimeout:        c.Limits.ShutdownTimeout,
			TCPKeepalive:           c.Limits.TCPKeepalive,
		},
		Log:     c.Log,
		Runtime: c.Runtime,
		Routing: fileRouting{
			MaxReplicaLag:  byteSize(c.Routing.MaxReplicaLag),
			ReadYourWrites: &c.Routing.ReadYourWrites,
			HealthInterval: c.Routing.HealthInterval,
		},
	}
}

// unresolved stands in for a secret that could not be resolved, so that
// Validate still reports the configuration's other problems without also
// calling the password missing. The config is never returned with it.
const unresolved = "\x00unresolved"

// fromFile resolves secrets and the users' backend defaults. It returns the
// config even with an error, for Validate to find the other problems.
func fromFile(fc *fileConfig, lookupEnv func(string) (string, bool)) (*Config, error) {
	c := &Config{
		Listen:     fc.Listen,
		HTTPListen: fc.HTTPListen,
		DataDir:    fc.DataDir,
		NodeID:     fc.NodeID,
		Raft:       fc.Raft,
		TLS:        fc.TLS,
		BackendTLS: fc.BackendTLS,
		Shards:     fc.Shards,
		Tables:     fc.Tables,
		Routing: Routing{
			MaxReplicaLag:  int64(fc.Routing.MaxReplicaLag),
			ReadYourWrites: fc.Routing.ReadYourWrites == nil || *fc.Routing.ReadYourWrites,
			HealthInterval: fc.Routing.HealthInterval,
		},
		Pool: fc.Pool,
		Limits: Limits{
			MaxClientConnections:   fc.Limits.MaxClientConnections,
			QueryTimeout:           fc.Limits.QueryTimeout,
			IdleTransactionTimeout: fc.Limits.IdleTransactionTimeout,
			ClientLoginTimeout:     fc.Limits.ClientLoginTimeout,
			MaxMessageSize:         int64(fc.Limits.MaxMessageSize),
			MaxMergeBuffer:         int64(fc.Limits.MaxMergeBuffer),
			ShutdownTimeout:        fc.Limits.ShutdownTimeout,
			TCPKeepalive:           fc.Limits.TCPKeepalive,
		},
		Log:     fc.Log,
		Runtime: fc.Runtime,
	}
	var errs []error
	if count(fc.AdminToken, fc.AdminTokenEnv, fc.AdminTokenFile) > 1 {
		errs = append(errs, errors.New("config: admin_token: use only one of admin_token, admin_token_env and admin_token_file"))
	} else if tok, err := secret("admin_token", fc.AdminToken, fc.AdminTokenEnv, fc.AdminTokenFile, lookupEnv); err != nil {
		errs = append(errs, err)
	} else {
		c.AdminToken = tok
	}
	for i, fu := range fc.Users {
		key := fmt.Sprintf("users[%d]", i)
		u := User{Name: fu.Name, Trust: fu.Trust, Admin: fu.Admin, BackendUser: fu.BackendUser}

		n := count(fu.Password, fu.PasswordEnv, fu.PasswordFile)
		if fu.Trust {
			n++
		}
		if n > 1 {
			errs = append(errs, fmt.Errorf("config: %s: user %q: use only one of password, password_env, password_file and trust: true", key, fu.Name))
			u.Trust, u.Password = false, unresolved
		} else if pw, err := secret(key+".password", fu.Password, fu.PasswordEnv, fu.PasswordFile, lookupEnv); err != nil {
			errs = append(errs, err)
			u.Password = unresolved
		} else {
			u.Password = pw
		}

		u.BackendPassword = u.Password
		if count(fu.BackendPassword, fu.BackendPasswordEnv, fu.BackendPasswordFile) > 1 {
			errs = append(errs, fmt.Errorf("config: %s: user %q: use only one of backend_password, backend_password_env and backend_password_file", key, fu.Name))
		} else if count(fu.BackendPassword, fu.BackendPasswordEnv, fu.BackendPasswordFile) == 1 {
			pw, err := secret(key+".backend_password", fu.BackendPassword, fu.BackendPasswordEnv, fu.BackendPasswordFile, lookupEnv)
			if err != nil {
				errs = append(errs, err)
			}
			u.BackendPassword = pw
		}
		if u.BackendUser == "" {
			u.BackendUser = u.Name
		}
		c.Users = append(c.Users, u)
	}
	return c, errors.Join(errs...)
}

func count(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// secret returns the one of value, $envVar, contents of file that is set
// ("" if none). A named source that yields nothing is an error: a user whose
// password silently became empty would be locked out, or worse, let in.
func secret(key, value, envVar, file string, lookupEnv func(string) (string, bool)) (string, error) {
	switch {
	case envVar != "":
		val, ok := lookupEnv(envVar)
		if !ok {
			return "", fmt.Errorf("config: %s_env: environment variable %s is not set", key, envVar)
		}
		if val == "" {
			return "", fmt.Errorf("config: %s_env: environment variable %s is empty", key, envVar)
		}
		return val, nil
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("config: %s_file: %w", key, err)
		}
		// echo and most editors end the file with a newline that is not
		// part of the password.
		val := strings.TrimRight(string(data), "\r\n")
		if val == "" {
			return "", fmt.Errorf("config: %s_file: %s is empty", key, file)
		}
		return val, nil
	}
	return value, nil
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	byteSizeType = reflect.TypeFor[byteSize]()
)

// durationHook reads Go durations ("15s", "1m30s"). A bare number other than
// 0 is refused: mapstructure would take 30 as 30 nanoseconds, which is never
// what the operator meant.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch d := data.(type) {
	case string:
		v, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration such as 30s, 5m or 1h", d)
		}
		return v, nil
	}
	rv := reflect.ValueOf(data)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if rv.IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("%v has no unit; write a duration such as %vs", data, data)
	}
	return data, nil
}

// sizeHook reads byte sizes: plain numbers or numbers with a unit.
func sizeHook(from, to reflect.Type, data any) (any, error) {
	if to != byteSizeType || from == byteSizeType {
		return data, nil
	}
	if s, ok := data.(string); ok {
		n, err := parseSize(s)
		if err != nil {
			return nil, err
		}
		return byteSize(n), nil
	}
	rv := reflect.ValueOf(data)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if rv.Int() < 0 {
			return nil, fmt.Errorf("size %d is negative", rv.Int())
		}
		return byteSize(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() > 1<<62 {
			return nil, fmt.Errorf("size %d is too large", rv.Uint())
		}
		return byteSize(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f < 0 || f != float64(int64(f)) || f > 1<<62 {
			return nil, fmt.Errorf("size %v is not a whole number of bytes", data)
		}
		return byteSize(int64(f)), nil
	}
	return data, nil
}

// sizeUnits follows postgresql.conf, where kB, MB, GB and TB are powers of
// 1024; the IEC spellings mean the same, so "64MB" and "64MiB" agree.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1 << 10,
	"kib": 1 << 10,
	"mb":  1 << 20,
	"mib": 1 << 20,
	"gb":  1 << 30,
	"gib": 1 << 30,
	"tb":  1 << 40,
	"tib": 1 << 40,
}

func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if i == 0 || !ok {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 512kB, 64MB or 64MiB", s)
	}
	var n int64
	for _, c := range t[:i] {
		n = n*10 + int64(c-'0')
		if n > 1<<62 {
			return 0, fmt.Errorf("size %q is too large", s)
		}
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}
