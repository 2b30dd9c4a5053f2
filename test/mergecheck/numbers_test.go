package mergecheck_test

// Numbers the proxy computes or re-encodes, against the server: avg's
// numeric division and scale, sum/count/min/max over partial results,
// float8/float4 text output and numeric text and binary output.

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/merge"
	"github.com/shardproxy/shardproxy/planner"
)

// randomNumeric returns numeric text of varied size and scale.
func randomNumeric(rng *rand.Rand) string {
	var b strings.Builder
	if rng.IntN(3) == 0 {
		b.WriteByte('-')
	}
	switch rng.IntN(4) {
	case 0: // small integers
		b.WriteString(strconv.Itoa(rng.IntN(1000)))
		return b.String()
	case 1: // up to 40 digits, any scale
		n := 1 + rng.IntN(40)
		digits := make([]byte, n)
		for i := range digits {
			digits[i] = byte('0' + rng.IntN(10))
		}
		p := rng.IntN(n + 1)
		b.Write(digits[:p])
		if p == 0 {
			b.WriteByte('0')
		}
		if p < n {
			b.WriteByte('.')
			b.Write(digits[p:])
		}
		return b.String()
	case 2: // exponent forms: tiny and huge values, trailing zeros kept
		b.WriteString(strconv.Itoa(1 + rng.IntN(99999)))
		b.WriteString(".")
		b.WriteString(strings.Repeat("0", rng.IntN(3)))
		b.WriteString("e")
		b.WriteString(strconv.Itoa(rng.IntN(120) - 60))
		return b.String()
	}
	// decimals with trailing zeros: 1.50, 0.000100
	b.WriteString(strconv.Itoa(rng.IntN(100)))
	b.WriteString(".")
	b.WriteString(strconv.Itoa(rng.IntN(10000)))
	b.WriteString(strings.Repeat("0", rng.IntN(4)))
	return b.String()
}

// canonNumeric is a key equal for equal numeric values (1.0, 1.00, 1e0),
// so generated sets hold each value once and min/max are unambiguous.
func canonNumeric(s string) string {
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		exp, _ = strconv.Atoi(s[i+1:])
	}
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	exp -= len(frac)
	digits = strings.TrimLeft(digits, "0")
	for strings.HasSuffix(digits, "0") {
		digits = digits[:len(digits)-1]
		exp++
	}
	if digits == "" {
		return "0"
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + digits + "e" + strconv.Itoa(exp)
}

// randomValues returns up to n distinct values of typ as text, with some
// NULLs (nil).
func randomValues(rng *rand.Rand, typ string, n int) []*string {
	seen := map[string]bool{}
	var out []*string
	for range n {
		if rng.IntN(10) == 0 {
			out = append(out, nil)
			continue
		}
		var v string
		switch typ {
		case "int2":
			v = strconv.Itoa(rng.IntN(65536) - 32768)
		case "int4":
			v = strconv.FormatInt(int64(rng.Int32())-int64(rng.Int32()), 10)
			if x, _ := strconv.ParseInt(v, 10, 64); x != int64(int32(x)) {
				v = strconv.Itoa(int(int32(x)))
			}
		case "int8":
			switch rng.IntN(3) {
			case 0:
				v = strconv.FormatInt(math.MaxInt64-rng.Int64N(1000), 10)
			case 1:
				v = strconv.FormatInt(-rng.Int64(), 10)
			default:
				v = strconv.Itoa(rng.IntN(1000))
			}
		case "numeric":
			switch rng.IntN(40) {
			case 0:
				v = "NaN"
			case 1:
				v = "Infinity"
			case 2:
				v = "-Infinity"
			default:
				v = randomNumeric(rng)
			}
		case "float8":
			// Multiples of 1/8 well inside 2^53: sums are exact in any
			// order, so the shards' partial sums add up to the server's.
			v = strconv.FormatFloat(float64(rng.Int64N(1<<40)-1<<39)/8, 'g', -1, 64)
			if rng.IntN(50) == 0 {
				v = "Infinity"
			}
		}
		key := v
		if typ == "numeric" {
			key = canonNumeric(v)
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, &v)
	}
	return out
}

// TestAggregates splits random value sets over 1-4 shards, combines each
// shard's partial count/sum/avg/min/max with merge and compares the bytes
// with the server's aggregate over all values, in text and in binary.
func TestAggregates(t *testing.T) {
	ctx, conn := connect(t)
	rng := rand.New(rand.NewPCG(15, 2024))
	bad := &mismatches{t: t}
	types := []string{"int2", "int4", "int8", "numeric", "float8"}
	plan := &planner.Aggregate{Input: route(), Columns: []planner.AggregateColumn{
		ac(0, planner.AggCount), ac(1, planner.AggSum),
		{Column: 2, Func: planner.AggAvg, CountColumn: 3, Name: "avg"},
		ac(3, planner.AggSum), ac(4, planner.AggMin), ac(5, planner.AggMax),
	}}
	for i := range 600 {
		typ := types[i%len(types)]
		vals := randomValues(rng, typ, rng.IntN(30))
		parts := make([][]*string, 1+rng.IntN(4))
		for k := range parts {
			parts[k] = []*string{}
		}
		for _, v := range vals {
			k := rng.IntN(len(parts))
			parts[k] = append(parts[k], v)
		}
		f := int16(rng.IntN(2))
		formats := []int16{1, f, f, 1, f, f}
		from := " from unnest($1::text[]::" + typ + "[]) x"
		shards := make([]merge.Rows, len(parts))
		for k, p := range parts {
			shards[k] = query(t, ctx, conn, formats, "select count(*), sum(x), sum(x), count(x), min(x), max(x)"+from, p)
		}
		want := query(t, ctx, conn, formats, "select count(*), sum(x), avg(x), count(x), min(x), max(x)"+from, vals)
		got, err := merge.Run(plan, shards, nil)
		if err != nil {
			bad.report("%s %v: %v", typ, deref(vals), err)
			continue
		}
		if err := sameRows(got, want); err != nil {
			bad.report("%s over %d shards, format %d, values %v: %v", typ, len(parts), f, deref(vals), err)
		}
	}
}

func deref(vs []*string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = "NULL"
		if v != nil {
			out[i] = *v
		}
	}
	return out
}

// TestNumericDivision checks avg's final division (numeric_div's scale
// and rounding) for many sums and counts against the server's a / n.
func TestNumericDivision(t *testing.T) {
	ctx, conn := connect(t)
	rng := rand.New(rand.NewPCG(16, 2024))
	bad := &mismatches{t: t}
	var as []string
	var ns []int64
	for range 5000 {
		as = append(as, randomNumeric(rng))
		// Counts from 1 to 10^12, log-uniform.
		ns = append(ns, 1+int64(math.Pow(10, rng.Float64()*12)))
	}
	as = append(as, "1", "2", "0", "0.000", "1.25", "3.75", "9223372036854775807", "-1", "0.5", "1e-900", "9e900")
	ns = append(ns, 2, 3, 7, 3, 2, 2, 2, 3, 1, 3, 7)
	plan := &planner.Aggregate{Input: route(), Columns: []planner.AggregateColumn{
		{Column: 0, Func: planner.AggAvg, CountColumn: 1, Name: "?column?"}, ac(1, planner.AggSum), ac(2, planner.AggAny),
	}}
	for _, f := range []int16{0, 1} {
		rows := query(t, ctx, conn, []int16{f, 1, f},
			"select a, n, a / n from unnest($1::text[]::numeric[], $2::int8[]) with ordinality u(a, n, i) order by i", as, ns)
		if len(rows.Values) != len(as) {
			t.Fatalf("%d rows for %d values", len(rows.Values), len(as))
		}
		for i, r := range rows.Values {
			one := merge.Rows{Fields: rows.Fields, Values: [][][]byte{r}}
			got, err := merge.Run(plan, []merge.Rows{one}, nil)
			if err != nil {
				bad.report("%s / %d: %v", as[i], ns[i], err)
				continue
			}
			if g, w := got.Values[0][0], r[2]; string(g) != string(w) {
				bad.report("%s / %d (format %d): %s, server %s", as[i], ns[i], f, show(g, f), show(w, f))
			}
		}
	}
}

// TestNumericOutput re-encodes numerics the server printed: decoding the
// text or binary form and writing it again must give the same bytes.
func TestNumericOutput(t *testing.T) {
	ctx, conn := connect(t)
	rng := rand.New(rand.NewPCG(17, 2024))
	bad := &mismatches{t: t}
	var vals []string
	for range 20000 {
		vals = append(vals, randomNumeric(rng))
	}
	vals = append(vals, "0", "0.0000", "NaN", "Infinity", "-Infinity", "1e-1000", "1e1000", "-0.00001", "10000", "9999.9999")
	rows := query(t, ctx, conn, []int16{0, 1, 0, 1},
		"select x, x, x / 7, x * 1.5 from unnest($1::text[]::numeric[]) with ordinality u(x, i) order by i", vals)
	plan := &planner.Aggregate{Input: route(), Columns: []planner.AggregateColumn{
		ac(0, planner.AggSum), ac(1, planner.AggSum), ac(2, planner.AggSum), ac(3, planner.AggSum),
	}}
	for i, r := range rows.Values {
		got, err := merge.Run(plan, []merge.Rows{{Fields: rows.Fields, Values: [][][]byte{r}}}, nil)
		if err != nil {
			bad.report("%s: %v", vals[i], err)
			continue
		}
		for c := range r {
			if string(got.Values[0][c]) != string(r[c]) {
				bad.report("%s column %d: %s, server %s", vals[i], c, show(got.Values[0][c], rows.Fields[c].Format), show(r[c], rows.Fields[c].Format))
			}
		}
	}
}

// TestFloatText re-encodes floats the server printed as text: the proxy's
// float8out/float4out must print what the server printed.
func TestFloatText(t *testing.T) {
	ctx, conn := connect(t)
	rng := rand.New(rand.NewPCG(18, 2024))
	bad := &mismatches{t: t}
	f8s := []float64{0.1, 1e20, 1.5e-7, 1e15, 1e15 - 1, 123456789012345.6, 1e-4, 1e-5, 9.999e-5, 5e-324,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 2.2250738585072014e-308, 1 << 53, 1<<53 + 2, 0.30000000000000004,
		100, 1e14, 99999999999999.99, 1e16, 1e21, 1e22, 1e23, 1.0 / 3, 2.0 / 3, math.Pi, math.E, math.Copysign(0, -1), 0,
		math.Inf(1), math.Inf(-1), math.NaN()}
	for range 30000 {
		switch rng.IntN(3) {
		case 0:
			f := math.Float64frombits(rng.Uint64())
			if math.IsNaN(f) {
				continue
			}
			f8s = append(f8s, f)
		case 1:
			f8s = append(f8s, rng.NormFloat64()*math.Pow(10, float64(rng.IntN(40)-20)))
		default:
			f8s = append(f8s, float64(rng.Int64N(1e17))/math.Pow(10, float64(rng.IntN(20))))
		}
	}
	f4s := []float32{0.1, 1e6, 1e5, 999999, 1234567, 16777216, 1e-4, 1e-5, math.MaxFloat32, math.SmallestNonzeroFloat32, 1.0 / 3}
	for range 30000 {
		f := math.Float32frombits(rng.Uint32())
		if !math.IsNaN(float64(f)) {
			f4s = append(f4s, f)
		}
	}
	check := func(typ string, rows merge.Rows, n int) {
		if len(rows.Values) != n {
			t.Fatalf("%s: %d rows for %d values", typ, len(rows.Values), n)
		}
		plan := &planner.Aggregate{Input: route(), Columns: []planner.AggregateColumn{ac(0, planner.AggSum)}}
		for _, r := range rows.Values {
			got, err := merge.Run(plan, []merge.Rows{{Fields: rows.Fields, Values: [][][]byte{r}}}, nil)
			if err != nil {
				bad.report("%s %s: %v", typ, r[0], err)
				continue
			}
			if string(got.Values[0][0]) != string(r[0]) {
				bad.report("%s: %q, server %q", typ, got.Values[0][0], r[0])
			}
		}
	}
	check("float8", query(t, ctx, conn, []int16{0}, "select x from unnest($1::float8[]) with ordinality u(x, i) order by i", f8s), len(f8s))
	check("float4", query(t, ctx, conn, []int16{0}, "select x from unnest($1::float4[]) with ordinality u(x, i) order by i", f4s), len(f4s))
}
