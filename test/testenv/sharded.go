package testenv

// A proxy node shared by every test of a package. StartNode needs a
// testing.TB for its cleanup, and TestMain has none; a package whose tests
// all read one loaded fixture through one node (test/sharded) starts the
// node here and stops it itself.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
)

// StartSharedNode starts a node from TestMain. cfg.DataDir is replaced by
// a fresh temporary directory. stop shuts the node down and removes that
// directory; call it after m.Run.
func StartSharedNode(cfg *config.Config) (n *node.Node, stop func(), err error) {
	dir, err := os.MkdirTemp("", "shardproxy-node-")
	if err != nil {
		return nil, nil, err
	}
	cfg.DataDir = dir
	// Logs go to stderr only on request, as in StartNode.
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("SHARDPROXY_TEST_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err = node.New(cfg, node.Options{Logger: log})
	if err == nil {
		err = n.Start()
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = n.WaitReady(ctx)
		cancel()
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("starting the shared node: %w", err)
	}
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
		_ = os.RemoveAll(dir)
	}
	return n, stop, nil
}
