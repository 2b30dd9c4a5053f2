package planner_test

// Golden plans, in the manner of Vitess's planbuilder testdata: each case
// is a statement (with the map's shard count and the session's shard
// setting when they matter) and the plan it must get, one primitive a
// line, shard SQL included, or the error. Run with -update to rewrite the
// expected plans after a deliberate change, then read the diff: the shard
// SQL is pg_query's deparse and is worth reading.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

type planCase struct {
	Comment      string   `json:"comment"`
	Query        string   `json:"query"`
	Shards       int      `json:"shards,omitempty"`
	SessionShard string   `json:"session_shard,omitempty"`
	Plan         []string `json:"plan,omitempty"`
	Rebindable   bool     `json:"rebindable,omitempty"`
	Error        string   `json:"error,omitempty"`
}

const planCasesFile = "testdata/plans.json"

func readPlanCases(t testing.TB) []planCase {
	data, err := os.ReadFile(planCasesFile)
	if err != nil {
		t.Fatal(err)
	}
	var cases []planCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("%s: %v", planCasesFile, err)
	}
	return cases
}

func buildContext(c planCase) planner.BuildContext {
	shards := c.Shards
	if shards == 0 {
		shards = 4
	}
	return planner.BuildContext{Schema: shopSchema(), Shards: shards, SessionShard: c.SessionShard}
}

func TestPlansGolden(t *testing.T) {
	cases := readPlanCases(t)
	seen := map[string]bool{}
	for i := range cases {
		c := &cases[i]
		if seen[c.Comment] {
			t.Errorf("duplicate comment %q", c.Comment)
		}
		seen[c.Comment] = true
		t.Run(c.Comment, func(t *testing.T) {
			lines, rebindable, gotErr := planForGolden(c.Query, buildContext(*c))
			if *update {
				c.Plan, c.Rebindable, c.Error = lines, rebindable, gotErr
				return
			}
			if gotErr != c.Error {
				t.Errorf("%s\nerror: got %q, want %q", c.Query, gotErr, c.Error)
			}
			if !slices.Equal(lines, c.Plan) {
				t.Errorf("%s\ngot:\n  %s\nwant:\n  %s", c.Query, joinLines(lines), joinLines(c.Plan))
			}
			if rebindable != c.Rebindable {
				t.Errorf("%s\nrebindable: got %v, want %v", c.Query, rebindable, c.Rebindable)
			}
		})
	}
	if *update {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cases); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(planCasesFile, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func planForGolden(sql string, ctx planner.BuildContext) ([]string, bool, string) {
	p, err := planner.Build(sql, ctx)
	if err != nil {
		var pe *pgerror.Error
		if errors.As(err, &pe) {
			return nil, false, fmt.Sprintf("%s %s (position %d)", pe.Code, pe.Message, pe.Position)
		}
		return nil, false, err.Error()
	}
	return p.Lines(), p.Rebindable, ""
}
