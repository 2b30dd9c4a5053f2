package localpg

// WithPortPicker lets tests choose the ports servers are started on.
func WithPortPicker(cfg Config, pick func() (int, error)) Config {
	cfg.pickPort = pick
	return cfg
}

// FreePort exposes freePort to tests.
var FreePort = freePort
