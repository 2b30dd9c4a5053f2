package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/localpg"
	"github.com/shardproxy/shardproxy/node"
)

func demoCmd() *cobra.Command {
	var (
		dir      string
		port     int
		shards   int
		replicas int
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start local shards with replicas and a proxy in front of them",
		Long: `demo starts, under one directory, local PostgreSQL shards (each a primary
plus streaming replicas), creates role app (password app) and database app on
every shard, and runs a proxy node in front of them. It prints the connection
URL and runs until Ctrl-C, then stops everything it started.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd, dir, port, shards, replicas, logLevel)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "data directory (default: a fresh one under /tmp, removed at exit)")
	cmd.Flags().IntVar(&port, "port", 6432, "client port of the proxy")
	cmd.Flags().IntVar(&shards, "shards", 2, "number of shards")
	cmd.Flags().IntVar(&replicas, "replicas", 1, "streaming replicas per shard")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}

func runDemo(cmd *cobra.Command, dir string, port, shards, replicas int, logLevel string) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// Fail before starting any server when the port is taken (PgBouncer's
	// default is 6432 too).
	probe, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("port %d is taken (PgBouncer uses 6432 too); choose another with --port: %w", port, err)
	}
	_ = probe.Close()

	cfg := config.Default()
	cfg.Listen = addr
	cfg.HTTPListen = ""
	cfg.Log.Level = logLevel
	log := cfg.Logger(os.Stderr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if dir != "" {
		if dir, err = filepath.Abs(dir); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "starting %d shard(s) with %d replica(s) each...\n", shards, replicas)
	started := time.Now()
	cluster, err := localpg.Start(ctx, localpg.Config{
		Dir: dir, Shards: shards, Replicas: replicas, Logger: log,
		Roles:     []localpg.Role{{Name: "app", Password: "app"}},
		Databases: []string{"app"},
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "stopping shards...")
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "shardproxy: stopping shards:", err)
		}
	}()
	// The proxy's own state (two-phase-commit decisions) lives with the
	// shards, so the demo leaves nothing behind in the working directory.
	cfg.DataDir = filepath.Join(cluster.Dir, "proxy")
	cfg.Users = []config.User{
		{Name: "app", Password: "app", BackendUser: "app", BackendPassword: "app"},
		// The admin console: psql -d shardproxy -U admin (password admin).
		{Name: "admin", Password: "admin", Admin: true, BackendUser: "app", BackendPassword: "app"},
	}
	// Example tables to try sharding with (create them through the proxy;
	// see the README): accounts and orders sharded and colocated by the
	// account id, countries copied on every shard. Any other table lives
	// on the first shard.
	cfg.Tables = []config.Table{
		{Name: "accounts", Schema: "public", Key: "id"},
		{Name: "orders", Schema: "public", Key: "account_id"},
		{Name: "countries", Schema: "public", Reference: true},
	}
	for _, sh := range cluster.Shards {
		s := config.Shard{ID: sh.ID, Primary: sh.Primary.Addr()}
		for _, r := range sh.Replicas {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		cfg.Shards = append(cfg.Shards, s)
	}
	n, err := node.New(cfg, node.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		return err
	}
	if err := n.WaitReady(ctx); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(os.Stderr, "ready in %.1fs; shards:\n", time.Since(started).Seconds())
	for _, sh := range cfg.Shards {
		fmt.Fprintf(os.Stderr, "  %s primary %s replicas %v\n", sh.ID, sh.Primary, sh.Replicas)
	}
	fmt.Fprintf(os.Stderr, "connect with: psql 'postgres://app:app@%s/app?sslmode=disable'   (Ctrl-C stops the demo)\n", addr)
	fmt.Fprintf(w, "postgres://app:app@%s/app?sslmode=disable\n", addr)
	select {
	case <-ctx.Done():
	case err := <-n.Err():
		return err
	}
	fmt.Fprintln(os.Stderr, "stopping proxy...")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Shutdown(sctx)
	return nil
}
