package main

// Fault injection for crash tests: SHARDPROXY_FAULT=kill-after-prepare or
// kill-after-decision makes the process SIGKILL itself at that point of its
// first two-phase commit, the way a machine dies: no deferred code, no
// flushing. Never set in production; unset, nothing changes.

import (
	"fmt"
	"os"
	"syscall"

	"github.com/shardproxy/shardproxy/twopc"
)

func faultHooks() (twopc.Hooks, error) {
	kill := func(string) { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	switch v := os.Getenv("SHARDPROXY_FAULT"); v {
	case "":
		return twopc.Hooks{}, nil
	case "kill-after-prepare":
		return twopc.Hooks{AfterPrepare: kill}, nil
	case "kill-after-decision":
		return twopc.Hooks{AfterDecision: kill}, nil
	default:
		return twopc.Hooks{}, fmt.Errorf("SHARDPROXY_FAULT=%q: want kill-after-prepare or kill-after-decision", v)
	}
}
