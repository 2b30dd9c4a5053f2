package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shardproxy/shardproxy/config"
	"github.com/shardproxy/shardproxy/node"
)

func serveCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run a proxy node",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, os.LookupEnv)
			if err != nil {
				return err
			}
			log := cfg.Logger(os.Stderr)
			if n := cfg.Runtime.GOMAXPROCS; n > 0 {
				runtime.GOMAXPROCS(n)
			}
			hooks, err := faultHooks()
			if err != nil {
				return err
			}
			n, err := node.New(cfg, node.Options{Logger: log, TwoPhaseHooks: hooks, Version: version})
			if err != nil {
				return err
			}
			if err := n.Start(); err != nil {
				return err
			}
			return runUntilSignal(n, cfg.Limits.ShutdownTimeout)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file (YAML)")
	return cmd
}

// runUntilSignal serves until SIGINT or SIGTERM, then drains: new clients
// are refused, transactions get until the deadline to finish, and the rest
// are closed with 57P01.
func runUntilSignal(n *node.Node, drain time.Duration) error {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "shardproxy: %s received, draining clients\n", s)
	case err := <-n.Err():
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	go func() {
		// A second signal skips the rest of the drain.
		<-sig
		cancel()
	}()
	_ = n.Shutdown(ctx)
	return nil
}
