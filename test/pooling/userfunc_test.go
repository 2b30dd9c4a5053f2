package pooling_test

// A setting changed inside a user function (set_config in its body) is
// invisible in the client's text; under transaction pooling it must still
// be the client's own and never reach the next client on that server
// connection.

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/node"
	"github.com/shardproxy/shardproxy/test/testenv"
)

func TestSettingInsideUserFunction(t *testing.T) {
	ctx := testenv.TestCtx(t, time.Minute)
	super := testenv.Connect(t, ctx, superURL())
	defer super.Close(ctx)
	if _, err := super.Exec(ctx, `CREATE OR REPLACE FUNCTION public.set_work_mem(v text) RETURNS text
		LANGUAGE sql AS $$ SELECT set_config('work_mem', v, false) $$;
		GRANT EXECUTE ON FUNCTION public.set_work_mem(text) TO PUBLIC`); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, txPool(1), node.Options{})
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		a := testenv.Connect(t, ctx, proxyURL(n))
		b := testenv.Connect(t, ctx, proxyURL(n))
		if _, err := a.Exec(ctx, "SELECT public.set_work_mem('9MB')", mode); err != nil {
			t.Fatal(err)
		}
		// One server connection: b runs on the connection a just used.
		if got := scalar(t, ctx, b, "SHOW work_mem"); got != "4MB" {
			t.Errorf("%v: the other client sees work_mem %s, want the default 4MB", mode, got)
		}
		if got := scalar(t, ctx, a, "SHOW work_mem"); got != "9MB" {
			t.Errorf("%v: the client that set it sees work_mem %s, want 9MB", mode, got)
		}
		a.Close(ctx)
		b.Close(ctx)
	}
}
