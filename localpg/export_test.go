package localpg

import "github.com/shardproxy/shardproxy/loopback"

// WithPortPicker lets tests choose the ports servers are started on.
func WithPortPicker(cfg Config, pick func() (int, error)) Config {
	cfg.pickPort = pick
	return cfg
}

// FreePort is the port picker servers use unless a test replaces it.
var FreePort = loopback.FreePort
