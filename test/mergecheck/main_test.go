package mergecheck_test

// The package's shared server: one is enough, the shards are parts of the
// data. It is started with localpg directly rather than test/testenv, so
// these checks of package merge do not depend on the proxy's own packages.

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/localpg"
)

var cluster *localpg.Cluster

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := localpg.Start(ctx, localpg.Config{
		Databases: []string{"app"},
		// The same initdb cache as test/testenv: one initdb per machine.
		TemplateDir: "/tmp/shardpg-template-15",
	})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test server:", err)
		return 1
	}
	cluster = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test server:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
