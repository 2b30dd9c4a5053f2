package sharded_test

// The comparison's own rules, on made-up answers: a differential suite
// whose comparison accepted wrong answers would pass a broken proxy, and
// one that rejected right ones would be ignored. The self-check covers the
// comparison on real answers; this covers the cases real answers rarely
// produce on demand (a scale lost, a float off in its last bits, a merge
// that reorders ties).

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

func numCell(s string) cell {
	var n pgtype.Numeric
	if err := n.Scan(s); err != nil {
		panic(err)
	}
	return cell{raw: []byte(s), val: n}
}

func floatCell(s string, f float64) cell { return cell{raw: []byte(s), val: f} }
func textCell(s string) cell             { return cell{raw: []byte(s), val: s} }

var nullCell = cell{}

func answer(oids []uint32, rows ...[]cell) result {
	r := result{tag: "SELECT " + string(rune('0'+len(rows)))}
	for i, oid := range oids {
		r.cols = append(r.cols, pgconn.FieldDescription{Name: "c" + string(rune('1'+i)), DataTypeOID: oid})
	}
	r.rows = rows
	return r
}

func TestCompareRules(t *testing.T) {
	num, f8, txt := []uint32{pgtype.NumericOID}, []uint32{pgtype.Float8OID}, []uint32{pgtype.TextOID}
	two := []uint32{pgtype.Int4OID, pgtype.TextOID}
	i4 := func(s string) cell { return cell{raw: []byte(s), val: s} }
	cases := []struct {
		name string
		q    query
		a, b result
		want string // a substring of the difference; "" for equal
	}{
		{"numeric scale differs", seq("t", ""), answer(num, []cell{numCell("1.0")}), answer(num, []cell{numCell("1.00")}), `column "c1"`},
		{"numeric scale by value", seq("t", "").value(), answer(num, []cell{numCell("1.0")}), answer(num, []cell{numCell("1.00")}), ""},
		{"numeric value by value", seq("t", "").value(), answer(num, []cell{numCell("1.0")}), answer(num, []cell{numCell("1.01")}), `column "c1"`},
		{"float last bits", seq("t", ""), answer(f8, []cell{floatCell("0.30000000000000004", 0.1+0.2)}), answer(f8, []cell{floatCell("0.3", 0.3)}), ""},
		{"float off", seq("t", ""), answer(f8, []cell{floatCell("84", 84)}), answer(f8, []cell{floatCell("84.000000001", 84.000000001)}), `column "c1"`},
		{"minus zero", seq("t", ""), answer(f8, []cell{floatCell("-0", -0.0)}), answer(f8, []cell{floatCell("0", 0)}), ""},
		{"NULL is not empty", seq("t", ""), answer(txt, []cell{nullCell}), answer(txt, []cell{textCell("")}), `column "c1"`},
		{"multiset ignores order", set("t", ""),
			answer(two, []cell{i4("1"), textCell("a")}, []cell{i4("2"), textCell("b")}),
			answer(two, []cell{i4("2"), textCell("b")}, []cell{i4("1"), textCell("a")}), ""},
		{"ordered does not", seq("t", ""),
			answer(two, []cell{i4("1"), textCell("a")}, []cell{i4("2"), textCell("b")}),
			answer(two, []cell{i4("2"), textCell("b")}, []cell{i4("1"), textCell("a")}), "row 1"},
		{"ties: the key sequence counts", ties("t", []int{1}, ""),
			answer(two, []cell{i4("1"), textCell("a")}, []cell{i4("2"), textCell("b")}),
			answer(two, []cell{i4("2"), textCell("b")}, []cell{i4("1"), textCell("a")}), "ORDER BY column 2"},
		{"ties: rows within a tie may move", ties("t", []int{1}, ""),
			answer(two, []cell{i4("1"), textCell("a")}, []cell{i4("2"), textCell("a")}),
			answer(two, []cell{i4("2"), textCell("a")}, []cell{i4("1"), textCell("a")}), ""},
		{"duplicates count", set("t", ""),
			answer(txt, []cell{textCell("x")}, []cell{textCell("x")}, []cell{textCell("y")}),
			answer(txt, []cell{textCell("x")}, []cell{textCell("y")}, []cell{textCell("y")}), "column"},
		{"a missing row is named", set("t", ""),
			answer(txt, []cell{textCell("x")}, []cell{textCell("y")}),
			answer(txt, []cell{textCell("x")}), `missing: ("y")`},
		{"column type", seq("t", ""), answer(num, []cell{numCell("1")}), answer([]uint32{pgtype.Int8OID}, []cell{i4("1")}), "oid"},
		{"error position", seq("t", ""),
			result{err: &pgconn.PgError{Code: "42601", Message: "syntax error", Position: 8}},
			result{err: &pgconn.PgError{Code: "42601", Message: "syntax error", Position: 9}}, "at 8"},
		{"same error", seq("t", ""),
			result{err: &pgconn.PgError{Code: "22P02", Message: "bad", Position: 3}},
			result{err: &pgconn.PgError{Code: "22P02", Message: "bad", Position: 3}}, ""},
	}
	for _, c := range cases {
		got := compareAs(c.q, c.a, c.b, "b")
		switch {
		case c.want == "" && got != "":
			t.Errorf("%s: want equal, got %s", c.name, got)
		case c.want != "" && !strings.Contains(got, c.want):
			t.Errorf("%s: want a difference mentioning %q, got %q", c.name, c.want, got)
		}
	}
}
