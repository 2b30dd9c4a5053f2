// Package config turns the operator's YAML file (and SHARDPROXY_* environment
// variables) into a Config the rest of the proxy can trust without checking
// again.
//
// Everything that can be wrong with a configuration is found here, at start-up,
// with the offending key named: an unknown key (usually a typo that would
// otherwise silently fall back to a default), a key whose feature this build
// does not have yet (so nobody believes, say, an admin token protects an API
// that does not exist), a secret that cannot be read, an address that cannot be
// dialled. A proxy that starts is a proxy whose configuration means what the
// operator thinks it means.
//
// Secrets may come from the YAML, from environment variables (password_env) or
// from files (password_file), so Kubernetes Secrets work; they are resolved at
// load time and Config holds only the final values.
//
// The package holds no mutable state: every Load or Parse uses its own viper
// instance and an injected environment lookup, so several nodes (and hermetic
// tests) can load different configurations in one process.
package config
