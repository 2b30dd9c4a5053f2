package clients_test

// Authentication failures look like PostgreSQL's: 28P01 for a wrong
// password and, so as not to reveal which users exist, for an unknown user
// too.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/test/testenv"
)

func TestAuthFailures(t *testing.T) {
	n := startNode(t, nil)
	ctx := testenv.TestCtx(t, 30*time.Second)
	for _, tc := range []struct {
		name, user, password string
	}{
		{"wrong password", testenv.AppUser, "not-the-password"},
		{"empty password", testenv.AppUser, ""},
		{"unknown user", "nosuchuser", "whatever"},
		{"admin with app's password", testenv.AdminUser, testenv.AppPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", tc.user, tc.password, n.Addr(), testenv.Database)
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ConnectTimeout = 10 * time.Second
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err == nil {
				_ = conn.Close(ctx)
				t.Fatal("connected")
			}
			pe := testenv.RequireCode(t, err, "28P01")
			if pe.Severity != "FATAL" || !strings.Contains(pe.Message, "password authentication failed") {
				t.Errorf("error %s %q, want FATAL password authentication failed", pe.Severity, pe.Message)
			}
		})
	}
	// The right password still works afterwards.
	checkUsable(t, ctx, testenv.Connect(t, ctx, proxyURL(n)))
	checkUsable(t, ctx, testenv.Connect(t, ctx, testenv.URL(n, testenv.AdminUser, testenv.AdminPasswd)))
	checkUsable(t, ctx, testenv.Connect(t, ctx, testenv.URL(n, testenv.TrustUser, "")))
}
