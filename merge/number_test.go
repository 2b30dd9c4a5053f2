package merge_test

// The number formats and numeric arithmetic one value at a time: what
// numeric_in/numeric_out/numeric_send, float8out/float4out and
// numeric_div's scale give on PostgreSQL 15 (test/mergecheck checks the
// same against a live server for many more values).

import (
	"math"
	"testing"

	"github.com/shardproxy/shardproxy/merge"
)

func TestFloatText(t *testing.T) {
	cases8 := []struct {
		f    float64
		want string
	}{
		{0.1, "0.1"},
		{1e20, "1e+20"},
		{1.5e-7, "1.5e-07"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{123456789012345, "123456789012345"},
		{1e15, "1e+15"},
		{1234567890123456, "1.234567890123456e+15"},
		{100, "100"},
		{-2.5, "-2.5"},
		{1.0 / 3, "0.3333333333333333"},
		{0.30000000000000004, "0.30000000000000004"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{5e-324, "5e-324"},
		{1e100, "1e+100"},
		{1e23, "9.999999999999999e+22"},
		{55252372936237216, "5.5252372936237216e+16"},
		{0, "0"},
		{negZero(), "-0"},
		{inf(1), "Infinity"},
		{inf(-1), "-Infinity"},
		{nan(), "NaN"},
	}
	for _, tc := range cases8 {
		if got := merge.FormatFloat8(tc.f); got != tc.want {
			t.Errorf("float8 %v: %q, want %q", tc.f, got, tc.want)
		}
	}
	cases4 := []struct {
		f    float32
		want string
	}{
		{0.1, "0.1"},
		{100000, "100000"},
		{1e6, "1e+06"},
		{1234567, "1.234567e+06"},
		{16777216, "1.6777216e+07"},
		{0.0001, "0.0001"},
		{1e-5, "1e-05"},
		{math.MaxFloat32, "3.4028235e+38"},
		{1.0 / 3, "0.33333334"},
	}
	for _, tc := range cases4 {
		if got := merge.FormatFloat4(tc.f); got != tc.want {
			t.Errorf("float4 %v: %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestParseFloat(t *testing.T) {
	ok := map[string]float64{" 1.5 ": 1.5, "-Infinity": inf(-1), "inf": inf(1), "1e-5": 1e-5, "5e-324": 5e-324}
	for s, want := range ok {
		if got, err := merge.ParseFloat(s, 64); err != nil || got != want {
			t.Errorf("ParseFloat(%q) = %v, %v", s, got, err)
		}
	}
	if got, err := merge.ParseFloat("nan", 64); err != nil || !math.IsNaN(got) {
		t.Errorf("ParseFloat(nan) = %v, %v", got, err)
	}
	bad := map[string]string{"1e400": "22003", "1e-400": "22003", "abc": "22P02", "1_0": "22P02", "": "22P02", "1e39": "22003"}
	for s, code := range bad {
		bits := 64
		if s == "1e39" {
			bits = 32
		}
		_, err := merge.ParseFloat(s, bits)
		wantCode(t, err, code)
	}
}

func TestNumericText(t *testing.T) {
	cases := map[string]string{
		"0":          "0",
		"0.000":      "0.000",
		"-0.0":       "0.0",
		" 1.50 ":     "1.50",
		"+3":         "3",
		".5":         "0.5",
		"5.":         "5",
		"-12.345":    "-12.345",
		"1e3":        "1000",
		"1.5e-3":     "0.0015",
		"1.50e1":     "15.0",
		"12345E-10":  "0.0000012345",
		"nan":        "NaN",
		"-INF":       "-Infinity",
		"+Infinity":  "Infinity",
		"0.00012340": "0.00012340",
		"100000000000000000000000000000000000000.000000000000000000000001": "100000000000000000000000000000000000000.000000000000000000000001",
	}
	for in, want := range cases {
		got, err := merge.NumericText(in)
		if err != nil || got != want {
			t.Errorf("numeric %q: %q, %v; want %q", in, got, err, want)
		}
		b, err := merge.NumericBinary(in)
		if err != nil {
			t.Fatal(err)
		}
		back, err := merge.NumericFromBinary(b)
		if err != nil || back != want {
			t.Errorf("numeric %q through binary: %q, %v; want %q", in, back, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "1.2.3", "1e", "e5", "1e1001", "--1", "1 2"} {
		_, err := merge.NumericText(bad)
		wantCode(t, err, "22P02")
	}
}

func TestNumericBinary(t *testing.T) {
	// Bytes numeric_send writes (ndigits, weight, sign, dscale, digits).
	cases := []struct {
		in   string
		want []uint16
	}{
		{"0", []uint16{0, 0, 0, 0}},
		{"0.00", []uint16{0, 0, 0, 2}},
		{"1", []uint16{1, 0, 0, 0, 1}},
		{"10000", []uint16{1, 1, 0, 0, 1}},
		{"12345.678", []uint16{3, 1, 0, 3, 1, 2345, 6780}},
		{"-0.0001", []uint16{1, 0xFFFF, 0x4000, 4, 1}},
		{"0.00001", []uint16{1, 0xFFFE, 0, 5, 1000}},
		{"1.50", []uint16{2, 0, 0, 2, 1, 5000}},
		{"NaN", []uint16{0, 0, 0xC000, 0}},
		{"Infinity", []uint16{0, 0, 0xD000, 32}},
		{"-Infinity", []uint16{0, 0, 0xF000, 32}},
	}
	for _, tc := range cases {
		got, err := merge.NumericBinary(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		for _, v := range tc.want {
			want = append(want, byte(v>>8), byte(v))
		}
		if string(got) != string(want) {
			t.Errorf("numeric %s: %x, want %x", tc.in, got, want)
		}
	}
	// numeric_recv truncates digits the display scale hides.
	hidden := []byte{0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88} // 1.5000 with dscale 1... digits 1, 5000
	if s, err := merge.NumericFromBinary(hidden); err != nil || s != "1.5" {
		t.Errorf("dscale 1 of 1.5000: %q, %v", s, err)
	}
	_, err := merge.NumericFromBinary([]byte{0, 1, 0, 0})
	wantCode(t, err, "22P03")
}

func TestNumericArithmetic(t *testing.T) {
	div := []struct{ a, b, want string }{
		{"1", "2", "0.50000000000000000000"},
		{"3", "2", "1.5000000000000000"},
		{"2", "3", "0.66666666666666666667"},
		{"-2", "3", "-0.66666666666666666667"},
		{"1", "3", "0.33333333333333333333"},
		{"10", "3", "3.3333333333333333"},
		{"10000", "3", "3333.3333333333333333"},
		{"100000", "3", "33333.333333333333"},
		{"1.25", "2", "0.62500000000000000000"},
		{"3.75", "2", "1.8750000000000000"},
		{"1", "1.00000000000000000000000", "1.00000000000000000000000"},
		{"5", "2", "2.5000000000000000"},
		{"0.5", "1", "0.50000000000000000000"},
		{"18446744073709551614", "2", "9223372036854775807"},
		{"0.000001", "3", "0.000000333333333333333333"},
		{"NaN", "3", "NaN"},
		{"-Infinity", "3", "-Infinity"},
		{"Infinity", "-3", "-Infinity"},
	}
	for _, tc := range div {
		got, err := merge.NumericDiv(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("%s / %s = %s, %v; want %s", tc.a, tc.b, got, err, tc.want)
		}
	}
	add := []struct{ a, b, want string }{
		{"1.5", "2.25", "3.75"},
		{"1", "-1.000", "0.000"},
		{"Infinity", "-Infinity", "NaN"},
		{"Infinity", "1", "Infinity"},
		{"NaN", "Infinity", "NaN"},
	}
	for _, tc := range add {
		got, err := merge.NumericAdd(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("%s + %s = %s, %v; want %s", tc.a, tc.b, got, err, tc.want)
		}
	}
	cmp := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.00", 0}, {"-1", "1", -1}, {"10", "9.99", 1}, {"NaN", "Infinity", 1},
		{"NaN", "NaN", 0}, {"-Infinity", "-1e100", -1}, {"0", "-0.000", 0}, {"0.0001", "0.00009", 1},
	}
	for _, tc := range cmp {
		if got, err := merge.NumericCompare(tc.a, tc.b); err != nil || got != tc.want {
			t.Errorf("cmp(%s, %s) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
	}
}
