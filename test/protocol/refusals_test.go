package protocol_test

// Shapes that transaction pooling refuses with 0A000 and a hint rather
// than answer differently from PostgreSQL. Session pooling passes them
// through and must match PostgreSQL exactly.

import (
	"strings"
	"testing"
)

func TestTransactionPoolingRefusals(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		// EXECUTE of a statement made by a protocol-level Parse: the
		// server knows it under the proxy's name, not the client's.
		{"execute_of_parsed_statement", []step{
			sync1(parse("dp_rf_p", "SELECT 'protocol'")),
			simple("EXECUTE dp_rf_p"),
		}},
		// Bind of a statement made by PREPARE.
		{"bind_of_sql_prepared_statement", []step{
			simple("PREPARE dp_rf_s AS SELECT 'sql'"),
			sync1(bind("", "dp_rf_s"), execute("", 0)),
		}},
		// PREPARE or DEALLOCATE among other statements of one query.
		{"deallocate_in_multi_statement", []step{
			simple("PREPARE dp_rf_m AS SELECT 'm'"),
			simple("SELECT 1; DEALLOCATE dp_rf_m"),
		}},
		{"prepare_in_multi_statement", []step{
			simple("PREPARE dp_rf_m2 AS SELECT 'm2'; SELECT 2"),
		}},
		// Temporary tables, however they are made.
		{"select_into_temp", []step{
			simple("SELECT 'secret' AS x INTO TEMP dp_rf_tmp"),
		}},
		{"create_table_in_pg_temp", []step{
			simple("CREATE TABLE pg_temp.dp_rf_tmp2 (x text)"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := transcript(t, directTarget().addr(t), tc.steps)
			for _, tg := range proxyTargets() {
				t.Run(tg.name, func(t *testing.T) {
					got := transcript(t, tg.addr(t), tc.steps)
					if !strings.HasPrefix(tg.name, "transaction") {
						if d := diffLines(want, got); d != "" {
							t.Errorf("answers differ from PostgreSQL's (- direct, + proxy):\n%s", d)
						}
						return
					}
					last := got[len(got)-3:]
					joined := strings.Join(last, "\n")
					if !strings.Contains(joined, `"Code":"0A000"`) || !strings.Contains(joined, `"Hint":"`) ||
						strings.Contains(joined, `"Hint":""`) {
						t.Fatalf("want a 0A000 refusal with a hint at the end, got:\n%s", strings.Join(got, "\n"))
					}
					if !strings.Contains(got[len(got)-1], "ReadyForQuery") {
						t.Fatalf("the session must go on after the refusal:\n%s", strings.Join(got, "\n"))
					}
				})
			}
		})
	}
}
