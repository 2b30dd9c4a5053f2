package router

import (
	"reflect"
	"testing"
)

func TestParseOptions(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"-c work_mem=4MB", map[string]string{"work_mem": "4MB"}},
		{"-cwork_mem=4MB --search-path=a", map[string]string{"work_mem": "4MB", "search_path": "a"}},
		{`-c search_path=a,\ b -c geqo=off`, map[string]string{"search_path": "a, b", "geqo": "off"}},
		{"-c novalue", map[string]string{}},
		{"stray -c x=1", map[string]string{"x": "1"}},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseOptions(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseOptions(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestSettingsQuery(t *testing.T) {
	cases := []struct {
		name       string
		want, have map[string]string
		sql        string
	}{
		{"nothing to do", map[string]string{"a": "1"}, map[string]string{"a": "1"}, ""},
		{"set", map[string]string{"a": "1", "b": "x'y"}, map[string]string{"a": "1"},
			"SELECT pg_catalog.set_config(E'b', E'x''y', false);"},
		{"reset", map[string]string{}, map[string]string{"work_mem": "4096"}, `RESET "work_mem";`},
		{"both, sorted", map[string]string{"z": `a\b`, "a": "2"}, map[string]string{"a": "1", "m": "3"},
			`SELECT pg_catalog.set_config(E'a', E'2', false), pg_catalog.set_config(E'z', E'a\\b', false);RESET "m";`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := settingsQuery(tc.want, tc.have); got != tc.sql {
				t.Fatalf("settingsQuery = %q, want %q", got, tc.sql)
			}
		})
	}
}

func TestServerStatementName(t *testing.T) {
	a := serverStatementName("select $1", []uint32{23})
	cases := []struct {
		name  string
		other string
		same  bool
	}{
		{"same text and types", serverStatementName("select $1", []uint32{23}), true},
		{"other types", serverStatementName("select $1", []uint32{25}), false},
		{"no types", serverStatementName("select $1", nil), false},
		{"other text", serverStatementName("select $2", []uint32{23}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if (a == tc.other) != tc.same {
				t.Fatalf("%s vs %s: same=%v, want %v", a, tc.other, a == tc.other, tc.same)
			}
		})
	}
	if len(a) > 63 {
		t.Fatalf("%q is longer than PostgreSQL's NAMEDATALEN-1", a)
	}
}
