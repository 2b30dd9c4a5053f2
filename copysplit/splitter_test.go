package copysplit_test

// PostgreSQL's COPY rules, case by case, in text and CSV: each case runs
// with the stream whole, byte by byte and in random chunks, and all three
// must agree with the expected rows (described as "key|data", "<NULL>|data"
// or "H:data") and error.

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/copysplit"
	"github.com/shardproxy/shardproxy/pgerror"
)

type splitCase struct {
	name  string
	opts  copysplit.Options
	input string
	rows  []string
	err   string // substring of the error message; "" for none
	ended bool   // ended by \. (checked only when set)
}

var (
	text    = copysplit.Options{}
	text1   = copysplit.Options{KeyField: 1, KeyName: "id"}
	csv     = copysplit.Options{CSV: true}
	csv1    = copysplit.Options{CSV: true, KeyField: 1, KeyName: "id"}
	csvEsc  = copysplit.Options{CSV: true, Escape: '\\'}
	textHdr = copysplit.Options{Header: true}
	csvHdr  = copysplit.Options{CSV: true, Header: true}
)

var textCases = []splitCase{
	{name: "plain rows", opts: text, input: "1\ta\n2\tb\n", rows: []string{"1|1\ta\n", "2|2\tb\n"}},
	{name: "key in the second field", opts: text1, input: "a\t1\tz\nb\t2\n", rows: []string{"1|a\t1\tz\n", "2|b\t2\n"}},
	{name: "NULL key", opts: text, input: `\N` + "\tx\n", rows: []string{"<NULL>|\\N\tx\n"}},
	{name: "escaped N is no NULL", opts: text, input: `\\N` + "\n", rows: []string{`\N|\\N` + "\n"}},
	{name: "custom NULL, empty", opts: copysplit.Options{Null: "", NullSet: true}, input: "\tx\nk\ty\n", rows: []string{"<NULL>|\tx\n", "k|k\ty\n"}},
	{name: "custom NULL compared raw", opts: copysplit.Options{Null: `\x41`, NullSet: true}, input: `\x41` + "\nA\n", rows: []string{"<NULL>|\\x41\n", "A|A\n"}},
	{name: "escapes", opts: text, input: `a\tb\nc\\d\101\x41\x4\xg\8\b\f\r\v` + "\t1\n",
		rows: []string{"a\tb\nc\\dAA\x04xg8\b\f\r\v|" + `a\tb\nc\\d\101\x41\x4\xg\8\b\f\r\v` + "\t1\n"}},
	{name: "octal keeps the low byte", opts: text, input: `\777` + "\n", rows: []string{"\xff|\\777\n"}},
	{name: "escaped delimiter", opts: text1, input: "a\\\tb\tkey\n", rows: []string{"key|a\\\tb\tkey\n"}},
	{name: "escaped newline is data", opts: text, input: "a\\\nb\t1\n2\n", rows: []string{"a\nb|a\\\nb\t1\n", "2|2\n"}},
	{name: "escaped CR is data", opts: text, input: "a\\\rb\n", rows: []string{"a\rb|a\\\rb\n"}},
	{name: "capital hex digit as delimiter", opts: copysplit.Options{Delimiter: 'A', KeyField: 1}, input: `\x4AbAc` + "\n", rows: []string{"c|\\x4AbAc\n"}},
	{name: "octal digits swallowed", opts: copysplit.Options{Delimiter: '|', KeyField: 0}, input: `\1234|x` + "\n", rows: []string{"S4|\\1234|x\n"}},
	{name: "empty line is an empty key", opts: text, input: "\n\n", rows: []string{"|\n", "|\n"}},
	{name: "last row without newline", opts: text, input: "1\n2", rows: []string{"1|1\n", "2|2"}},
	{name: "backslash at the very end", opts: text, input: `ab\`, rows: []string{`ab|ab\`}},
	{name: "CRLF", opts: text, input: "1\r\n2\r\n3", rows: []string{"1|1\r\n", "2|2\r\n", "3|3"}},
	{name: "CR", opts: text, input: "1\r2\r", rows: []string{"1|1\r", "2|2\r"}},
	{name: "CR at the very end", opts: text, input: "1\r", rows: []string{"1|1\r"}},
	{name: "LF after CRLF", opts: text, input: "1\r\n2\n", rows: []string{"1|1\r\n"}, err: "literal newline found in data"},
	{name: "CR after LF", opts: text, input: "1\n2\r3\n", rows: []string{"1|1\n"}, err: "literal carriage return found in data"},
	{name: "bare CR after CRLF", opts: text, input: "1\r\n2\r3\r\n", rows: []string{"1|1\r\n"}, err: "literal carriage return found in data"},
	{name: "bare CR at the end after CRLF", opts: text, input: "1\r\n2\r", rows: []string{"1|1\r\n"}, err: "literal carriage return found in data"},
	{name: "LF after CR", opts: text, input: "1\r2\n", rows: []string{"1|1\r"}, err: "literal newline found in data"},
	{name: "end marker", opts: text, input: "1\n\\.\n2\n", rows: []string{"1|1\n"}, ended: true},
	{name: "end marker ignores what follows", opts: text, input: "1\n\\.\ngarbage\r\n\\", rows: []string{"1|1\n"}, ended: true},
	{name: "end marker after data on its line", opts: text, input: "1\tx\\.\n2\n", rows: []string{"1|1\tx"}, ended: true},
	{name: "end marker CRLF", opts: text, input: "1\r\n\\.\r\n", rows: []string{"1|1\r\n"}, ended: true},
	{name: "end marker CR", opts: text, input: "1\r\\.\r", rows: []string{"1|1\r"}, ended: true},
	{name: "end marker first, CR", opts: text, input: "\\.\rx", ended: true},
	{name: "end marker first, CRLF", opts: text, input: "\\.\r\n", ended: true},
	{name: "end marker corrupt", opts: text, input: "1\n\\.x\n", rows: []string{"1|1\n"}, err: "end-of-copy marker corrupt"},
	{name: "end marker at the very end", opts: text, input: "1\n\\.", rows: []string{"1|1\n"}, err: "end-of-copy marker corrupt"},
	{name: "end marker style", opts: text, input: "1\n\\.\r\n", rows: []string{"1|1\n"}, err: "end-of-copy marker does not match previous newline style"},
	{name: "end marker LF after CRLF", opts: text, input: "1\r\n\\.\n", rows: []string{"1|1\r\n"}, err: "end-of-copy marker does not match previous newline style"},
	{name: "end marker CRLF corrupt", opts: text, input: "1\r\n\\.x\r\n", rows: []string{"1|1\r\n"}, err: "end-of-copy marker corrupt"},
	{name: "escaped backslash then dot", opts: text, input: `\\.` + "\n", rows: []string{`\.|\\.` + "\n"}},
	{name: "missing key", opts: text1, input: "1\t2\n3\n", rows: []string{"2|1\t2\n"}, err: `missing data for column "id"`},
	{name: "missing key without a name", opts: copysplit.Options{KeyField: 2}, input: "1\t2\n", err: "field 3"},
	{name: "header", opts: textHdr, input: "id\tname\n1\tx\n", rows: []string{"H:id\tname\n", "1|1\tx\n"}},
	{name: "header only", opts: textHdr, input: "id", rows: []string{"H:id"}},
	{name: "header sets the line style", opts: textHdr, input: "id\r\n1\n", rows: []string{"H:id\r\n"}, err: "literal newline found in data"},
	{name: "header then marker", opts: textHdr, input: "id\n\\.\n", rows: []string{"H:id\n"}, ended: true},
	{name: "nothing", opts: text, input: ""},
}

var csvCases = []splitCase{
	{name: "plain rows", opts: csv, input: "1,a\n2,b\n", rows: []string{"1|1,a\n", "2|2,b\n"}},
	{name: "quoted key", opts: csv, input: `"a,b",1` + "\n", rows: []string{`a,b|"a,b",1` + "\n"}},
	{name: "doubled quote", opts: csv, input: `"a""b"` + "\n", rows: []string{`a"b|"a""b"` + "\n"}},
	{name: "quote mid-field", opts: csv, input: `ab"c,d"e,1` + "\n", rows: []string{`abc,de|ab"c,d"e,1` + "\n"}},
	{name: "newline in quotes", opts: csv1, input: "\"x\ny\",\"1\r\n2\"\nz,3\n", rows: []string{"1\r\n2|\"x\ny\",\"1\r\n2\"\n", "3|z,3\n"}},
	{name: "escape character", opts: csvEsc, input: `"a\"b\\c\d"` + "\n", rows: []string{`a"b\c\d|"a\"b\\c\d"` + "\n"}},
	{name: "escape outside quotes is data", opts: csvEsc, input: `a\"b,c"` + "\n", rows: []string{`a\b,c|a\"b,c"` + "\n"}},
	{name: "escaped quote keeps the quote open", opts: csvEsc, input: "\"a\\\"\nb\"\n", rows: []string{"a\"\nb|\"a\\\"\nb\"\n"}},
	{name: "NULL is unquoted empty", opts: csv, input: ",1\n\"\",2\n", rows: []string{"<NULL>|,1\n", "|\"\",2\n"}},
	{name: "custom NULL", opts: copysplit.Options{CSV: true, Null: "NULL", NullSet: true}, input: "NULL\n\"NULL\"\n", rows: []string{"<NULL>|NULL\n", "NULL|\"NULL\"\n"}},
	{name: "FORCE_NOT_NULL", opts: copysplit.Options{CSV: true, ForceNotNull: true}, input: ",1\n", rows: []string{"|,1\n"}},
	{name: "FORCE_NULL", opts: copysplit.Options{CSV: true, ForceNull: true}, input: "\"\",1\nx,2\n", rows: []string{"<NULL>|\"\",1\n", "x|x,2\n"}},
	{name: "other delimiter and quote", opts: copysplit.Options{CSV: true, Delimiter: ';', Quote: '\''}, input: "'a;b';1\n", rows: []string{"a;b|'a;b';1\n"}},
	{name: "quote as backslash", opts: copysplit.Options{CSV: true, Quote: '\\'}, input: `\a,b\` + "\n", rows: []string{`a,b|\a,b\` + "\n"}},
	{name: "CR in quotes", opts: csv, input: "\"a\rb\"\n", rows: []string{"a\rb|\"a\rb\"\n"}},
	{name: "CRLF", opts: csv, input: "1\r\n\"2\r\n\"\r\n", rows: []string{"1|1\r\n", "2\r\n|\"2\r\n\"\r\n"}},
	{name: "unquoted CR", opts: csv, input: "1\n2\r\n", rows: []string{"1|1\n"}, err: "unquoted carriage return found in data"},
	{name: "unquoted LF after CR", opts: csv, input: "1\r2\n", rows: []string{"1|1\r"}, err: "unquoted newline found in data"},
	{name: "unterminated at the end", opts: csv, input: "1\n\"abc\n", rows: []string{"1|1\n"}, err: "unterminated CSV quoted field"},
	{name: "unterminated after the key", opts: csv, input: "1,\"abc", err: "unterminated CSV quoted field"},
	{name: "end marker", opts: csv, input: "1\n\\.\n2\n", rows: []string{"1|1\n"}, ended: true},
	{name: "backslash-dot data", opts: csv, input: "\\.x,1\n\\.\n", rows: []string{`\.x|\.x,1` + "\n"}, ended: true},
	{name: "backslash-dot at the end is data", opts: csv, input: `\.`, rows: []string{`\.|\.`}},
	{name: "backslash-dot mid-line is data", opts: csv, input: "a\\.\n", rows: []string{"a\\.|a\\.\n"}},
	{name: "quoted backslash-dot", opts: csv, input: "\"\\.\"\n", rows: []string{"\\.|\"\\.\"\n"}},
	{name: "backslash-dot in a continued line", opts: csv1, input: "\"a\n\\.\n\",1\n", rows: []string{"1|\"a\n\\.\n\",1\n"}},
	{name: "end marker CRLF", opts: csv, input: "1\r\n\\.\r\n", rows: []string{"1|1\r\n"}, ended: true},
	{name: "end marker style", opts: csv, input: "1\n\\.\r\n", rows: []string{"1|1\n"}, err: "end-of-copy marker does not match previous newline style"},
	{name: "LF where CRLF marker expected is data", opts: csv, input: "1\r\n\\.\n", rows: []string{"1|1\r\n"}, err: "unquoted newline found in data"},
	{name: "missing key", opts: csv1, input: "\"a,b\"\n", err: `missing data for column "id"`},
	{name: "header", opts: csvHdr, input: "id,name\n1,x\n", rows: []string{"H:id,name\n", "1|1,x\n"}},
	{name: "quoted newline in header", opts: csvHdr, input: "\"i\nd\"\n1\n", rows: []string{"H:\"i\nd\"\n", "1|1\n"}},
	{name: "unterminated header is not checked", opts: csvHdr, input: "\"id", rows: []string{"H:\"id"}},
}

func TestSplit(t *testing.T) {
	for _, group := range []struct {
		name  string
		cases []splitCase
	}{{"text", textCases}, {"csv", csvCases}} {
		t.Run(group.name, func(t *testing.T) {
			for _, tc := range group.cases {
				t.Run(tc.name, func(t *testing.T) {
					whole := run(tc.opts, []byte(tc.input))
					if got := whole.describe(); !slices.Equal(got, tc.rows) {
						t.Errorf("rows\n got %q\nwant %q", got, tc.rows)
					}
					switch {
					case tc.err == "" && whole.err != nil:
						t.Errorf("unexpected error %v", whole.err)
					case tc.err != "" && (whole.err == nil || !strings.Contains(whole.err.Error(), tc.err)):
						t.Errorf("error %v, want one saying %q", whole.err, tc.err)
					case tc.err != "":
						var pe *pgerror.Error
						if !errors.As(whole.err, &pe) || pe.Code != "22P04" {
							t.Errorf("error %v is not a 22P04 *pgerror.Error", whole.err)
						}
					}
					if tc.ended && !whole.ended {
						t.Error("the end marker was not seen")
					}
					r := rand.New(rand.NewPCG(uint64(len(tc.input)), 7))
					for _, sizes := range [][]int{{1}, {2}, {3}, randomSizes(r, len(tc.input)), randomSizes(r, len(tc.input))} {
						if d := sameRun(whole, run(tc.opts, []byte(tc.input), sizes...)); d != "" {
							t.Fatalf("in chunks of %v: %s", sizes, d)
						}
					}
				})
			}
		})
	}
}

func TestOptions(t *testing.T) {
	cases := []struct {
		opts copysplit.Options
		code pgerror.Code
		msg  string
	}{
		{copysplit.Options{Delimiter: '\n'}, "22023", "COPY delimiter cannot be newline or carriage return"},
		{copysplit.Options{Delimiter: '\\'}, "22023", `COPY delimiter cannot be "\"`},
		{copysplit.Options{Delimiter: 'a'}, "22023", `COPY delimiter cannot be "a"`},
		{copysplit.Options{Delimiter: 0xe9}, "0A000", "COPY delimiter must be a single one-byte character"},
		{copysplit.Options{Null: "a\rb", NullSet: true}, "22023", "COPY null representation cannot use newline or carriage return"},
		{copysplit.Options{Null: "a\tb", NullSet: true}, "0A000", "COPY delimiter must not appear in the NULL specification"},
		{copysplit.Options{Quote: '\''}, "0A000", "COPY quote available only in CSV mode"},
		{copysplit.Options{Escape: '\\'}, "0A000", "COPY escape available only in CSV mode"},
		{copysplit.Options{ForceNull: true}, "0A000", "COPY force null available only in CSV mode"},
		{copysplit.Options{ForceNotNull: true}, "0A000", "COPY force not null available only in CSV mode"},
		{copysplit.Options{CSV: true, Delimiter: '"'}, "22023", "COPY delimiter and quote must be different"},
		{copysplit.Options{CSV: true, Null: `"`, NullSet: true}, "0A000", "CSV quote character must not appear in the NULL specification"},
		{copysplit.Options{Encoding: "Shift_JIS"}, "0A000", "COPY with encoding Shift_JIS cannot be split by shard"},
		{copysplit.Options{Encoding: "win-950"}, "0A000", "COPY with encoding win-950 cannot be split by shard"},
	}
	for _, tc := range cases {
		_, err := copysplit.New(tc.opts)
		var pe *pgerror.Error
		if !errors.As(err, &pe) || pe.Code != tc.code || pe.Message != tc.msg {
			t.Errorf("New(%+v) = %v, want %s %q", tc.opts, err, tc.code, tc.msg)
		}
	}
	for _, ok := range []copysplit.Options{
		{CSV: true, Delimiter: 'a'}, {CSV: true, Delimiter: '\\'}, {Encoding: "UTF8"}, {Encoding: "LATIN1"}, {Encoding: "euc_jp"},
	} {
		if _, err := copysplit.New(ok); err != nil {
			t.Errorf("New(%+v) = %v", ok, err)
		}
	}
	for _, bad := range []copysplit.Options{{KeyField: -1}, {MaxRowBytes: -1}} {
		if _, err := copysplit.New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}

func TestMaxRowBytes(t *testing.T) {
	g := run(copysplit.Options{MaxRowBytes: 10}, []byte("short\n"+strings.Repeat("x", 11)+"\n"), 4)
	var pe *pgerror.Error
	if !errors.As(g.err, &pe) || pe.Code != "54000" || len(g.rows) != 1 {
		t.Fatalf("rows %q, error %v", g.describe(), g.err)
	}
}

func TestSticky(t *testing.T) {
	s, _ := copysplit.New(copysplit.Options{KeyField: 1})
	emit := func(copysplit.Row) error { return nil }
	first := s.Feed([]byte("1\n"), emit)
	if first == nil {
		t.Fatal("a row without the key was accepted")
	}
	if err := s.Feed([]byte("1\t2\n"), emit); err != first {
		t.Fatalf("Feed after failure = %v", err)
	}
	if err := s.End(emit); err != first {
		t.Fatalf("End after failure = %v", err)
	}

	// An emit error stops Feed and sticks too.
	stop := errors.New("stop")
	s, _ = copysplit.New(copysplit.Options{})
	n := 0
	err := s.Feed([]byte("1\n2\n3\n"), func(copysplit.Row) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("Feed = %v after %d rows", err, n)
	}
}

// Rows that fit in a chunk cost no allocation, nor do keys without escapes
// or keys whose buffer has grown already, nor rows completed from the
// previous chunk once the carry-over buffer has grown.
func TestNoAllocations(t *testing.T) {
	for name, tc := range map[string]struct {
		opts  copysplit.Options
		chunk string
	}{
		"text":          {copysplit.Options{KeyField: 1}, "abc\t12345\tsome text\n" + `x\ty` + "\t\\101\\x42\tz\n"},
		"csv":           {copysplit.Options{CSV: true, KeyField: 1}, "abc,12345,some text\n" + `x,"q""uoted",z` + "\n"},
		"spanning rows": {copysplit.Options{}, "b\t2\nc\t3\na\t"},
	} {
		s, err := copysplit.New(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		chunk := []byte(tc.chunk)
		emit := func(copysplit.Row) error { return nil }
		s.Feed(chunk, emit) // warm up the reused buffers
		allocs := testing.AllocsPerRun(1000, func() {
			if err := s.Feed(chunk, emit); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Feed", name, allocs)
		}
	}
}
