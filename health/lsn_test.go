package health_test

import (
	"math"
	"testing"

	"github.com/shardproxy/shardproxy/health"
)

func TestParseLSN(t *testing.T) {
	tests := []struct {
		in   string
		want health.LSN
		ok   bool
	}{
		{"0/0", 0, true},
		{"16/B374D848", 0x16_B374D848, true},
		{"16/b374d848", 0x16_B374D848, true},
		{"00000016/0000000A", 0x16_0000000A, true},
		{"FFFFFFFF/FFFFFFFF", math.MaxUint64, true},
		{"0/3000108", 0x3000108, true},
		{"", 0, false},
		{"/", 0, false},
		{"0/", 0, false},
		{"/0", 0, false},
		{"0", 0, false},
		{"0/0/0", 0, false},
		{"100000000/0", 0, false}, // 9 digits
		{"0/100000000", 0, false},
		{"-1/0", 0, false},
		{"+1/0", 0, false},
		{" 1/0", 0, false},
		{"1/0 ", 0, false},
		{"0x1/0", 0, false},
		{"G/0", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := health.ParseLSN(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseLSN(%q) error %v, want ok=%v", tt.in, err, tt.ok)
			}
			if got != tt.want {
				t.Fatalf("ParseLSN(%q) = %#x, want %#x", tt.in, uint64(got), uint64(tt.want))
			}
		})
	}
}

func TestLSNString(t *testing.T) {
	tests := []struct {
		in   health.LSN
		want string
	}{
		{0, "0/0"},
		{0x16_B374D848, "16/B374D848"},
		{0x3000108, "0/3000108"},
		{0x1_00000000, "1/0"},
		{math.MaxUint64, "FFFFFFFF/FFFFFFFF"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("LSN(%#x).String() = %q, want %q", uint64(tt.in), got, tt.want)
		}
		back, err := health.ParseLSN(tt.want)
		if err != nil || back != tt.in {
			t.Errorf("ParseLSN(%q) = %#x, %v; want %#x", tt.want, uint64(back), err, uint64(tt.in))
		}
	}
}

func TestParseLSNAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = health.ParseLSN("16/B374D848") }); n != 0 {
		t.Errorf("ParseLSN allocates %v times", n)
	}
}

// FuzzParseLSN checks that whatever parses formats back to the same value
// and that the canonical form parses to itself.
func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{"0/0", "16/B374D848", "ffffffff/ffffffff", "00000001/00000000", "1/", "x/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := health.ParseLSN(s)
		if err != nil {
			return
		}
		out := l.String()
		back, err := health.ParseLSN(out)
		if err != nil || back != l {
			t.Fatalf("%q parsed to %#x, formatted %q, parsed back to %#x, %v", s, uint64(l), out, uint64(back), err)
		}
		if len(s) < 3 || len(s) > 17 {
			t.Fatalf("%q (%d bytes) parsed: an LSN is 3 to 17 bytes", s, len(s))
		}
	})
}
