package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
)

// Users every test cluster has: app/app with a password, and a trust user.
const (
	AppUser     = "app"
	AppPassword = "app"
	TrustUser   = "regress"
	Database    = "app"
	AdminUser   = "admin"
	AdminPasswd = "secret"
)

// StartCluster starts shards for a test package. Call it from TestMain and
// Stop the cluster before os.Exit; it never skips: a machine without
// PostgreSQL fails loudly.
func StartCluster(shards, replicas int) (*localpg.Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return localpg.Start(ctx, localpg.Config{
		Shards: shards, Replicas: replicas,
		Roles:      []localpg.Role{{Name: AppUser, Password: AppPassword}},
		Databases:  []string{Database},
		TrustUsers: []string{TrustUser},
		// initdb once per machine rather than once per test package.
		TemplateDir: "/tmp/shardpg-template-15",
	})
}

// Config returns a node configuration in front of the cluster, listening on
// free loopback ports, with the standard users. Tests adjust it before
// StartNode.
func Config(c *localpg.Cluster) *config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.Users = []config.User{
		{Name: AppUser, Password: AppPassword, BackendUser: AppUser, BackendPassword: AppPassword},
		{Name: TrustUser, Trust: true, BackendUser: TrustUser},
		{Name: AdminUser, Password: AdminPasswd, Admin: true, BackendUser: AppUser, BackendPassword: AppPassword},
	}
	for _, sh := range c.Shards {
		s := config.Shard{ID: sh.ID, Primary: sh.Primary.Addr()}
		for _, r := range sh.Replicas {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		cfg.Shards = append(cfg.Shards, s)
	}
	return cfg
}

// ExecOnPrimaries runs sql as the app user on every shard's primary,
// directly (a test's tables, before the proxy routes to them).
func ExecOnPrimaries(tb testing.TB, ctx context.Context, c *localpg.Cluster, sql string) {
	tb.Helper()
	for _, sh := range c.Shards {
		conn := Connect(tb, ctx, DirectURL(c, sh.Primary, AppUser, AppPassword))
		if _, err := conn.Exec(ctx, sql); err != nil {
			tb.Fatalf("shard %s: %s: %v", sh.ID, sql, err)
		}
		conn.Close(ctx)
	}
}

// StartNode starts a proxy node for one test and stops it at cleanup.
func StartNode(tb testing.TB, cfg *config.Config, opts node.Options) *node.Node {
	tb.Helper()
	if cfg.DataDir == "" || cfg.DataDir == config.Default().DataDir {
		cfg.DataDir = tb.TempDir()
	}
	if opts.Logger == nil {
		// t.Log panics once a test has ended and sessions log while
		// shutting down, so logs go to stderr, on request.
		opts.Logger = slog.New(slog.DiscardHandler)
		if os.Getenv("SHARDPROXY_TEST_DEBUG") != "" {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	n, err := node.New(cfg, opts)
	if err != nil {
		tb.Fatalf("node.New: %v", err)
	}
	if err := n.Start(); err != nil {
		tb.Fatalf("node.Start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		tb.Fatalf("node never got its map from Raft: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n
}

// URL is a connection URL for user/password through the node.
func URL(n *node.Node, user, password string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, password, n.Addr(), Database)
}

// DirectURL is a connection URL straight to a server, bypassing the proxy.
func DirectURL(c *localpg.Cluster, s *localpg.Server, user, password string) string {
	return c.ConnString(s, user, password, Database)
}

// RunWithCluster is a test package's TestMain body: it starts shards,
// hands them to setup (which keeps them for the tests and may prepare the
// database), runs the tests and stops the shards, also when setup fails.
// It returns the exit code.
func RunWithCluster(m *testing.M, shards, replicas int, setup func(*localpg.Cluster) error) int {
	c, err := StartCluster(shards, replicas)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test cluster:", err)
		return 1
	}
	code := 1
	if err := setup(c); err != nil {
		fmt.Fprintln(os.Stderr, "preparing the test cluster:", err)
	} else {
		code = m.Run()
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test cluster:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Main is the TestMain of a package that only keeps its cluster: it
// starts shards, stores the cluster in *keep, runs the tests and exits.
func Main(m *testing.M, shards, replicas int, keep **localpg.Cluster) {
	os.Exit(RunWithCluster(m, shards, replicas, func(c *localpg.Cluster) error {
		*keep = c
		return nil
	}))
}
