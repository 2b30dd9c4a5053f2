package testenv

// Helpers every integration test package uses: bounded contexts, pgx
// connections closed at cleanup, SQLSTATE checks, and condition waits with
// deadlines (never sleeps as synchronisation).

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestCtx bounds one test's network waits.
func TestCtx(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// Connect opens a pgx connection, closed at cleanup.
func Connect(tb testing.TB, ctx context.Context, url string) *pgx.Conn {
	tb.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	return ConnectConfig(tb, ctx, cfg)
}

// ConnectConfig opens a pgx connection from cfg, closed at cleanup.
func ConnectConfig(tb testing.TB, ctx context.Context, cfg *pgx.ConnConfig) *pgx.Conn {
	tb.Helper()
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		tb.Fatalf("connect to %s:%d as %s: %v", cfg.Host, cfg.Port, cfg.User, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	})
	return conn
}

// PGCode returns the SQLSTATE of err, "" when it carries none.
func PGCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// RequireCode fails unless err is a PostgreSQL error with SQLSTATE code.
func RequireCode(tb testing.TB, err error, code string) *pgconn.PgError {
	tb.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		tb.Fatalf("want SQLSTATE %s, got %v (%T)", code, err, err)
	}
	if pe.Code != code {
		tb.Fatalf("want SQLSTATE %s, got %s: %s (hint %q)", code, pe.Code, pe.Message, pe.Hint)
	}
	return pe
}

// WaitFor polls cond until it is true or ctx ends.
func WaitFor(tb testing.TB, ctx context.Context, what string, cond func() (bool, error)) {
	tb.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			tb.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitActive waits until a backend of the app user runs a statement
// containing text (seen on a direct superuser connection).
func WaitActive(tb testing.TB, ctx context.Context, super *pgx.Conn, text string) {
	tb.Helper()
	WaitFor(tb, ctx, "a backend running "+text, func() (bool, error) {
		var n int
		err := super.QueryRow(ctx, `select count(*) from pg_stat_activity
			where usename = 'app' and state = 'active' and query like '%' || $1 || '%'
			and pid <> pg_backend_pid()`, text).Scan(&n)
		return n > 0, err
	})
}

// WaitErr waits for a goroutine's result within ctx.
func WaitErr(tb testing.TB, ctx context.Context, done <-chan error) error {
	tb.Helper()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		tb.Fatalf("the statement did not end: %v", ctx.Err())
		return nil
	}
}
