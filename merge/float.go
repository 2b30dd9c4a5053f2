package merge

// float4 and float8 text forms as PostgreSQL 15 prints and reads them. A
// float sum or avg the proxy computes must print as the server would:
// with extra_float_digits >= 1 (the default) that is Ryu's shortest output
// (src/common/d2s.c and f2s.c), in fixed notation while the decimal
// exponent is in [-4, 15) for float8 and [-4, 6) for float4, else
// d.ddde+XX with at least two exponent digits. PostgreSQL builds Ryu
// without STRICTLY_SHORTEST: the digits must lie strictly inside the
// value's rounding interval, never on its edge, so where Go's shortest
// output sits on an edge (1e+23, some integers above 2^53) it takes the
// nearest decimal one digit longer that is strictly inside, as Ryu does.

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

func nan() float64         { return math.NaN() }
func inf(sign int) float64 { return math.Inf(sign) }

// appendFloatText appends float8out's (bits 64) or float4out's (bits 32)
// text for f, with extra_float_digits >= 1.
func appendFloatText(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(f, -1):
		return append(buf, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(buf, "-0"...)
		}
		return append(buf, '0')
	}
	if f < 0 {
		buf = append(buf, '-')
		f = -f
	}
	digits, exp := shortestDigits(f, bits)
	fixedBelow := 15
	if bits == 32 {
		fixedBelow = 6
	}
	if exp < -4 || exp >= fixedBelow {
		buf = append(buf, digits[0])
		if len(digits) > 1 {
			buf = append(buf, '.')
			buf = append(buf, digits[1:]...)
		}
		buf = append(buf, 'e')
		if exp < 0 {
			buf = append(buf, '-')
			exp = -exp
		} else {
			buf = append(buf, '+')
		}
		if exp < 10 {
			buf = append(buf, '0')
		}
		return strconv.AppendInt(buf, int64(exp), 10)
	}
	switch {
	case exp < 0:
		buf = append(buf, '0', '.')
		for range -exp - 1 {
			buf = append(buf, '0')
		}
		return append(buf, digits...)
	case exp+1 >= len(digits):
		buf = append(buf, digits...)
		for range exp + 1 - len(digits) {
			buf = append(buf, '0')
		}
		return buf
	}
	buf = append(buf, digits[:exp+1]...)
	buf = append(buf, '.')
	return append(buf, digits[exp+1:]...)
}

// parseFloat reads float8in's (bits 64) or float4in's (bits 32) input:
// surrounding whitespace, decimal or exponent notation, NaN, [+-]Infinity,
// [+-]inf. Out of range is 22003 as in PostgreSQL.
func parseFloat(s string, bits int) (float64, error) {
	typ := "double precision"
	if bits == 32 {
		typ = "real"
	}
	t := trimSpace(s)
	switch strings.ToLower(t) {
	case "nan", "+nan", "-nan":
		return nan(), nil
	case "infinity", "+infinity", "inf", "+inf":
		return inf(1), nil
	case "-infinity", "-inf":
		return inf(-1), nil
	}
	// strconv accepts forms strtod does not (underscores, "0x" without
	// exponent, "Inf" spellings handled above), so check the shape first.
	if t == "" || strings.ContainsAny(t, "_xXpPiInN") {
		return 0, badInput(typ, s)
	}
	f, err := strconv.ParseFloat(t, bits)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, outOfRange("%s is out of range for type %s", quoteValue(s), typ)
		}
		return 0, badInput(typ, s)
	}
	if f == 0 && strings.ContainsAny(strings.SplitN(strings.ToLower(t), "e", 2)[0], "123456789") {
		// strtod reports underflow to zero as ERANGE; PostgreSQL refuses it.
		return 0, outOfRange("%s is out of range for type %s", quoteValue(s), typ)
	}
	return f, nil
}

// splitE splits strconv's 'e' format of a positive value into significant
// digits (no trailing zeros) and the decimal exponent of the first.
func splitE(e string) (string, int) {
	mant, expText, _ := strings.Cut(e, "e")
	digits := strings.TrimRight(strings.Replace(mant, ".", "", 1), "0")
	if digits == "" {
		digits = "0"
	}
	exp, _ := strconv.Atoi(expText)
	return digits, exp
}

// decimalRat is digits (d.ddd) times 10^exp, exactly.
func decimalRat(digits string, exp int) *big.Rat {
	r, _ := new(big.Rat).SetString(digits[:1] + "." + digits[1:] + "e" + strconv.Itoa(exp))
	return r
}

// roundingInterval returns the bounds, exclusive, of the reals that round
// to the positive finite f in its precision (bits 64 or 32).
func roundingInterval(f float64, bits int) (lo, hi *big.Rat) {
	var m, frac uint64
	var e, expField int
	if bits == 32 {
		b := math.Float32bits(float32(f))
		frac, expField = uint64(b&(1<<23-1)), int(b>>23&0xFF)
		m, e = frac|1<<23, expField-150
		if expField == 0 {
			m, e = frac, -149
		}
	} else {
		b := math.Float64bits(f)
		frac, expField = b&(1<<52-1), int(b>>52&0x7FF)
		m, e = frac|1<<52, expField-1075
		if expField == 0 {
			m, e = frac, -1074
		}
	}
	pow2 := func(n int) *big.Rat {
		if n >= 0 {
			return new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), uint(n)))
		}
		return new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Lsh(big.NewInt(1), uint(-n)))
	}
	scaled := func(k uint64, n int) *big.Rat {
		return new(big.Rat).Mul(new(big.Rat).SetInt(new(big.Int).SetUint64(k)), pow2(n))
	}
	hi = scaled(2*m+1, e-1)
	if frac == 0 && expField > 1 {
		// Below a power of two the next value down is half as far.
		lo = scaled(4*m-1, e-2)
	} else {
		lo = scaled(2*m-1, e-1)
	}
	return lo, hi
}

// shortestDigits returns PostgreSQL's (Ryu's) digits and decimal exponent
// for the positive finite f.
func shortestDigits(f float64, bits int) (string, int) {
	digits, exp := splitE(strconv.FormatFloat(f, 'e', -1, bits))
	lo, hi := roundingInterval(f, bits)
	inside := func(d string, x int) bool {
		r := decimalRat(d, x)
		return r.Cmp(lo) > 0 && r.Cmp(hi) < 0
	}
	// Go's shortest output lies in the closed interval; strictly inside,
	// it is Ryu's too (no shorter decimal fits the smaller open interval,
	// and it is the nearest of its length).
	if inside(digits, exp) {
		return digits, exp
	}
	exact := new(big.Rat).SetFloat64(f)
	for p := len(digits); p <= 17; p++ {
		// The nearest p-digit decimal, then its neighbour on f's other
		// side: Ryu takes the nearest that is strictly inside.
		d, x := splitE(strconv.FormatFloat(f, 'e', p-1, bits))
		if inside(d, x) {
			return d, x
		}
		n := new(big.Int)
		n.SetString(d+strings.Repeat("0", p-len(d)), 10)
		if decimalRat(d, x).Cmp(exact) < 0 {
			n.Add(n, big.NewInt(1))
		} else {
			n.Sub(n, big.NewInt(1))
		}
		s := n.String()
		x += len(s) - p // 9.99 + 0.01 is 10.0
		if d, x := strings.TrimRight(s, "0"), x; d != "" && inside(d, x) {
			return d, x
		}
	}
	return digits, exp // not reached: 17 digits always fit
}
