package planner_test

// Golden cases for sharding-key extraction, in the manner of Vitess's
// planbuilder testdata: each case is a statement and the analysis it must
// produce, one fact per line. Run with -update to rewrite the expected
// analyses after a deliberate change, then read the diff.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current results")

type keyCase struct {
	Comment  string   `json:"comment"`
	Query    string   `json:"query"`
	Analysis []string `json:"analysis,omitempty"`
	Error    string   `json:"error,omitempty"`
}

const keyCasesFile = "testdata/keys_cases.json"

func TestKeysGolden(t *testing.T) {
	data, err := os.ReadFile(keyCasesFile)
	if err != nil {
		t.Fatal(err)
	}
	var cases []keyCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("%s: %v", keyCasesFile, err)
	}
	schema := shopSchema()
	seen := map[string]bool{}
	for i := range cases {
		c := &cases[i]
		if seen[c.Comment] {
			t.Errorf("duplicate comment %q", c.Comment)
		}
		seen[c.Comment] = true
		t.Run(c.Comment, func(t *testing.T) {
			gotLines, gotErr := analyzeForGolden(c.Query, schema)
			if *update {
				c.Analysis, c.Error = gotLines, gotErr
				return
			}
			if gotErr != c.Error {
				t.Errorf("%s\nerror: got %q, want %q", c.Query, gotErr, c.Error)
			}
			if !slices.Equal(gotLines, c.Analysis) {
				t.Errorf("%s\ngot:\n  %s\nwant:\n  %s", c.Query, joinLines(gotLines), joinLines(c.Analysis))
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
		if err := os.WriteFile(keyCasesFile, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func analyzeForGolden(sql string, schema planner.Schema) ([]string, string) {
	a, err := planner.AnalyzeSQL(sql, schema)
	if err != nil {
		var pe *pgerror.Error
		if errors.As(err, &pe) {
			return nil, fmt.Sprintf("%s %s (position %d)", pe.Code, pe.Message, pe.Position)
		}
		return nil, err.Error()
	}
	return a.Lines(), ""
}

func joinLines(ls []string) string {
	var b bytes.Buffer
	for i, l := range ls {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(l)
	}
	return b.String()
}
