package localpg

// This file holds the cluster configuration, its validation, and the search
// for the PostgreSQL binaries.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/loopback"
)

// Config describes a cluster to start. The zero value is one shard without
// replicas in a fresh directory under /tmp.
type Config struct {
	// Dir is the base directory; it is created if missing. If empty, a fresh
	// short directory under /tmp (/tmp/shardpg-NNN) is made and removed by
	// Stop. Unix socket paths live under it and are limited to 107 bytes,
	// and when running as root the postgres OS user must be able to reach it.
	Dir string
	// Shards is the number of shards (default 1).
	Shards int
	// Replicas is the number of streaming replicas per shard (default 0).
	Replicas int
	// BinDir holds initdb, postgres and pg_basebackup. Default: the
	// environment variable SHARDPROXY_PG_BINDIR, else PostgreSQL 15's
	// directory (see FindBinDir).
	BinDir string
	// Logger receives progress and timings; nil discards them.
	Logger *slog.Logger
	// Roles are created on every primary (LOGIN, password stored as SCRAM).
	Roles []Role
	// Databases are created on every primary, owned by the first of Roles
	// (by postgres when Roles is empty).
	Databases []string
	// TrustUsers get `host all <name> 127.0.0.1/32 trust` in pg_hba.conf,
	// ahead of the SCRAM line, and a LOGIN role without password.
	TrustUsers []string
	// Settings are extra postgresql.conf settings; they override the
	// harness's own.
	Settings map[string]string
	// Durable keeps fsync, synchronous_commit and full_page_writes on. The
	// default (false) turns them off: faster, and a crash of the machine
	// loses nothing a test harness cares about.
	Durable bool
	// TemplateDir, if set, is where the initdb output is cached and shared
	// by every cluster that names the same directory, in this process or in
	// others (access is serialised with a lock file). Empty means a template
	// inside Dir, made once per cluster.
	TemplateDir string
	// StartTimeout bounds the wait for each server to accept connections and
	// for the replicas of a shard to stream (default 30s).
	StartTimeout time.Duration
	// StopTimeout bounds the wait for a fast shutdown before the server is
	// killed (default 10s).
	StopTimeout time.Duration

	pickPort func() (int, error) // tests replace loopback.FreePort (export_test.go)
}

// Role is a login role created on every primary.
type Role struct {
	Name      string
	Password  string
	Superuser bool
}

// EnvBinDir names the environment variable that overrides where the
// PostgreSQL binaries are looked for.
const EnvBinDir = "SHARDPROXY_PG_BINDIR"

// PreferredVersion is the PostgreSQL major version the harness looks for
// first, and DebianPackage the package that provides it.
const (
	PreferredVersion = 15
	DebianPackage    = "postgresql-15"
)

// ErrNoPostgres is wrapped by the errors that say the PostgreSQL server
// binaries could not be found.
var ErrNoPostgres = errors.New("localpg: PostgreSQL server binaries not found")

// requiredBinaries must all be present in a bin directory.
var requiredBinaries = []string{"initdb", "postgres", "pg_basebackup"}

// settingName matches a GUC name, including custom ones (ext.name).
var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// Validate reports configuration errors.
func (c Config) Validate() error {
	if c.Shards < 0 {
		return fmt.Errorf("localpg: Shards is %d, must not be negative", c.Shards)
	}
	if c.Replicas < 0 {
		return fmt.Errorf("localpg: Replicas is %d, must not be negative", c.Replicas)
	}
	if c.StartTimeout < 0 || c.StopTimeout < 0 {
		return errors.New("localpg: timeouts must not be negative")
	}
	seen := map[string]bool{"postgres": true}
	for _, r := range c.Roles {
		if err := checkName("role", r.Name); err != nil {
			return err
		}
		if seen[r.Name] {
			return fmt.Errorf("localpg: role %q given twice (or is the superuser postgres)", r.Name)
		}
		seen[r.Name] = true
		if strings.ContainsRune(r.Password, 0) {
			return fmt.Errorf("localpg: role %q: password contains a NUL byte", r.Name)
		}
	}
	for _, u := range c.TrustUsers {
		if err := checkName("trust user", u); err != nil {
			return err
		}
		if seen[u] {
			return fmt.Errorf("localpg: trust user %q is also a role (or given twice, or is postgres)", u)
		}
		seen[u] = true
	}
	dbs := map[string]bool{"postgres": true, "template0": true, "template1": true}
	for _, d := range c.Databases {
		if err := checkName("database", d); err != nil {
			return err
		}
		if dbs[d] {
			return fmt.Errorf("localpg: database %q given twice or already exists", d)
		}
		dbs[d] = true
	}
	for k, v := range c.Settings {
		if !settingName.MatchString(k) {
			return fmt.Errorf("localpg: setting name %q is not valid", k)
		}
		if strings.ContainsAny(v, "\n\r\x00") {
			return fmt.Errorf("localpg: setting %s: value must be one line", k)
		}
	}
	return nil
}

// checkName accepts what can be written, double-quoted, in SQL and in
// pg_hba.conf.
func checkName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("localpg: empty %s name", what)
	case len(name) > 63:
		return fmt.Errorf("localpg: %s name %q is longer than 63 bytes", what, name)
	case strings.ContainsAny(name, "\"\n\r\x00"):
		return fmt.Errorf("localpg: %s name %q contains a double quote or control character", what, name)
	}
	return nil
}

// withDefaults fills in defaults; it is called after Validate.
func (c Config) withDefaults() Config {
	if c.Shards == 0 {
		c.Shards = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.pickPort == nil {
		c.pickPort = loopback.FreePort
	}
	return c
}

// FindBinDir returns the directory holding the PostgreSQL server binaries
// (initdb, postgres, pg_basebackup). It tries, in order: override; the
// environment variable SHARDPROXY_PG_BINDIR; /usr/lib/postgresql/15/bin; the
// newest /usr/lib/postgresql/*/bin; `pg_config --bindir`. An explicit
// override that lacks a binary is an error rather than a reason to look
// elsewhere. The error wraps ErrNoPostgres and names the Debian package.
func FindBinDir(override string) (string, error) {
	for _, explicit := range []struct{ dir, from string }{
		{override, "Config.BinDir"},
		{os.Getenv(EnvBinDir), EnvBinDir},
	} {
		if explicit.dir == "" {
			continue
		}
		if missing := missingBinaries(explicit.dir); len(missing) > 0 {
			return "", fmt.Errorf("%w: %s=%s lacks %s", ErrNoPostgres, explicit.from, explicit.dir, strings.Join(missing, ", "))
		}
		return explicit.dir, nil
	}

	candidates := []string{fmt.Sprintf("/usr/lib/postgresql/%d/bin", PreferredVersion)}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(globbed, func(a, b string) int { return versionOf(b) - versionOf(a) }) // newest first
	candidates = append(candidates, globbed...)
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	for _, dir := range candidates {
		if dir != "" && len(missingBinaries(dir)) == 0 {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w (looked in %s, /usr/lib/postgresql/*/bin and `pg_config --bindir`): install the Debian package %s (apt-get install %s) or set %s",
		ErrNoPostgres, candidates[0], DebianPackage, DebianPackage, EnvBinDir)
}

func missingBinaries(dir string) []string {
	var missing []string
	for _, b := range requiredBinaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}

// versionOf extracts the major version from /usr/lib/postgresql/<v>/bin.
func versionOf(binDir string) int {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return 0
	}
	return int(v * 10) // 9.6 -> 96, 15 -> 150
}
