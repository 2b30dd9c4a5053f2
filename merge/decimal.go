package merge

// Exact arithmetic on PostgreSQL's numeric type. Sums and averages the
// proxy computes must print exactly what one server would print, digit for
// digit and with the same display scale, so numeric is never converted to
// float: a value is an unscaled big integer and a display scale, with the
// wire formats (text, and binary base-10000 digits) and the scale rules of
// numeric.c (add: the larger scale; div: select_div_scale) reproduced here.

import (
	"encoding/binary"
	"math/big"
	"strconv"
	"strings"
)

type numKind uint8

const (
	numFinite numKind = iota
	numNaN
	numPosInf
	numNegInf
)

// Constants of PostgreSQL's numeric.c (PG 15).
const (
	numMinSigDigits    = 16     // NUMERIC_MIN_SIG_DIGITS
	numMaxDisplayScale = 1000   // NUMERIC_MAX_DISPLAY_SCALE
	numMaxPrecision    = 1000   // NUMERIC_MAX_PRECISION, bounds a text exponent
	numDscaleMax       = 0x3FFF // NUMERIC_DSCALE_MAX
	numWeightMax       = 32767  // NUMERIC_WEIGHT_MAX
	numWeightMin       = -32768 // NUMERIC_WEIGHT_MIN

	numSignPos    = 0x0000
	numSignNeg    = 0x4000
	numSignNaN    = 0xC000
	numSignPosInf = 0xD000
	numSignNegInf = 0xF000
)

// decimal is a numeric value: coef / 10^scale for finite values, where
// scale is the display scale (dscale), never negative. Values are never
// modified once built.
type decimal struct {
	kind  numKind
	coef  big.Int
	scale int
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

func decimalFromInt(v int64) *decimal {
	d := &decimal{}
	d.coef.SetInt64(v)
	return d
}

// isSpace is PostgreSQL's isspace() in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// parseNumeric reads numeric's text input as numeric_in does: optional
// whitespace, sign, digits with one optional point, optional exponent, or
// NaN / [+-]Infinity / [+-]inf in any case.
func parseNumeric(s string) (*decimal, error) {
	t := trimSpace(s)
	switch strings.ToLower(t) {
	case "nan":
		return &decimal{kind: numNaN}, nil
	case "infinity", "+infinity", "inf", "+inf":
		return &decimal{kind: numPosInf}, nil
	case "-infinity", "-inf":
		return &decimal{kind: numNegInf}, nil
	}
	i, neg := 0, false
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		neg = t[i] == '-'
		i++
	}
	digits := make([]byte, 0, len(t))
	frac, point := 0, false
	for ; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default:
			goto exponent
		}
	}
exponent:
	if len(digits) == 0 {
		return nil, badInput("numeric", s)
	}
	exp := 0
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		start := i
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		j := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == j {
			return nil, badInput("numeric", s)
		}
		e, err := strconv.Atoi(t[start:i])
		if err != nil || e > numMaxPrecision || e < -numMaxPrecision {
			return nil, badInput("numeric", s)
		}
		exp = e
	}
	if i != len(t) {
		return nil, badInput("numeric", s)
	}
	d := &decimal{}
	d.coef.SetString(string(digits), 10)
	d.scale = frac - exp
	if d.scale < 0 {
		d.coef.Mul(&d.coef, pow10(-d.scale))
		d.scale = 0
	}
	if neg {
		d.coef.Neg(&d.coef)
	}
	return d, d.check()
}

// check refuses values PostgreSQL cannot store, with its error.
func (d *decimal) check() error {
	if d.kind != numFinite {
		return nil
	}
	if d.scale > numDscaleMax {
		return outOfRange("value overflows numeric format")
	}
	if d.coef.Sign() == 0 {
		return nil
	}
	// The base-10000 weight of the leading digit.
	if w, _ := d.weightAndFirst(); w > numWeightMax || w < numWeightMin {
		return outOfRange("value overflows numeric format")
	}
	return nil
}

// decodeNumericBinary reads numeric_send's format: int16 ndigits, weight,
// sign, dscale, then ndigits base-10000 digits. Digits hidden by dscale are
// truncated away, as numeric_recv does.
func decodeNumericBinary(b []byte) (*decimal, error) {
	if len(b) < 8 {
		return nil, badBinary("numeric")
	}
	ndigits := int(int16(binary.BigEndian.Uint16(b)))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int(binary.BigEndian.Uint16(b[6:]))
	if ndigits < 0 || len(b) != 8+2*ndigits || dscale > numDscaleMax {
		return nil, badBinary("numeric")
	}
	switch sign {
	case numSignNaN:
		return &decimal{kind: numNaN}, nil
	case numSignPosInf:
		return &decimal{kind: numPosInf}, nil
	case numSignNegInf:
		return &decimal{kind: numNegInf}, nil
	case numSignPos, numSignNeg:
	default:
		return nil, badBinary("numeric")
	}
	d := &decimal{scale: dscale}
	var n big.Int
	base := big.NewInt(10000)
	var digit big.Int
	for i := range ndigits {
		v := int16(binary.BigEndian.Uint16(b[8+2*i:]))
		if v < 0 || v >= 10000 {
			return nil, badBinary("numeric")
		}
		n.Mul(&n, base)
		n.Add(&n, digit.SetInt64(int64(v)))
	}
	// n * 10^exp is the value; coef is value * 10^dscale.
	exp := 4*(weight-ndigits+1) + dscale
	if exp >= 0 {
		d.coef.Mul(&n, pow10(exp))
	} else {
		d.coef.Quo(&n, pow10(-exp))
	}
	if sign == numSignNeg {
		d.coef.Neg(&d.coef)
	}
	return d, nil
}

// groups returns the absolute value as base-10000 digits aligned on the
// decimal point, without leading or trailing zero digits, and the weight
// of the first: numeric's storage form. Zero has no digits.
func (d *decimal) groups() (digits []int16, weight int) {
	s := new(big.Int).Abs(&d.coef).String()
	if s == "0" {
		return nil, 0
	}
	intPart, frac := "", s
	if len(s) > d.scale {
		intPart, frac = s[:len(s)-d.scale], s[len(s)-d.scale:]
	} else {
		frac = strings.Repeat("0", d.scale-len(s)) + s
	}
	if r := len(intPart) % 4; r != 0 {
		intPart = strings.Repeat("0", 4-r) + intPart
	}
	if r := len(frac) % 4; r != 0 {
		frac += strings.Repeat("0", 4-r)
	}
	all := intPart + frac
	weight = len(intPart)/4 - 1
	digits = make([]int16, 0, len(all)/4)
	for i := 0; i < len(all); i += 4 {
		v, _ := strconv.Atoi(all[i : i+4])
		digits = append(digits, int16(v))
	}
	for len(digits) > 0 && digits[0] == 0 {
		digits = digits[1:]
		weight--
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	return digits, weight
}

// weightAndFirst returns the weight and value of the first nonzero
// base-10000 digit (0, 0 for zero), as select_div_scale reads them.
func (d *decimal) weightAndFirst() (weight int, first int) {
	digits, w := d.groups()
	if len(digits) == 0 {
		return 0, 0
	}
	return w, int(digits[0])
}

// appendBinary appends numeric_send's form of d.
func (d *decimal) appendBinary(buf []byte) []byte {
	var sign uint16
	var digits []int16
	weight, dscale := 0, 0
	// For the special values numeric_send reads the display scale from
	// header bits that hold the sign: 0 for NaN, 32 for the infinities.
	switch d.kind {
	case numNaN:
		sign = numSignNaN
	case numPosInf:
		sign, dscale = numSignPosInf, 32
	case numNegInf:
		sign, dscale = numSignNegInf, 32
	default:
		digits, weight = d.groups()
		dscale = d.scale
		if d.coef.Sign() < 0 {
			sign = numSignNeg
		}
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(digits)))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, uint16(dscale))
	for _, g := range digits {
		buf = binary.BigEndian.AppendUint16(buf, uint16(g))
	}
	return buf
}

// appendText appends numeric_out's form: exactly scale digits after the
// point.
func (d *decimal) appendText(buf []byte) []byte {
	switch d.kind {
	case numNaN:
		return append(buf, "NaN"...)
	case numPosInf:
		return append(buf, "Infinity"...)
	case numNegInf:
		return append(buf, "-Infinity"...)
	}
	s := new(big.Int).Abs(&d.coef).String()
	if d.coef.Sign() < 0 {
		buf = append(buf, '-')
	}
	if d.scale == 0 {
		return append(buf, s...)
	}
	if len(s) <= d.scale {
		buf = append(buf, '0', '.')
		for range d.scale - len(s) {
			buf = append(buf, '0')
		}
		return append(buf, s...)
	}
	buf = append(buf, s[:len(s)-d.scale]...)
	buf = append(buf, '.')
	return append(buf, s[len(s)-d.scale:]...)
}

func (d *decimal) String() string { return string(d.appendText(nil)) }

// order places the special values: -Infinity below every finite value,
// +Infinity above, NaN above everything and equal to itself (cmp_numerics).
func (d *decimal) order() int {
	switch d.kind {
	case numNegInf:
		return -1
	case numPosInf:
		return 1
	case numNaN:
		return 2
	}
	return 0
}

// cmpDecimal compares by value: 1.0 equals 1.00.
func cmpDecimal(a, b *decimal) int {
	if oa, ob := a.order(), b.order(); oa != 0 || ob != 0 {
		return cmpInt(int64(oa), int64(ob))
	}
	if sa, sb := a.coef.Sign(), b.coef.Sign(); sa != sb {
		return cmpInt(int64(sa), int64(sb))
	}
	if a.scale == b.scale {
		return a.coef.Cmp(&b.coef)
	}
	x, y := &a.coef, &b.coef
	if a.scale < b.scale {
		x = new(big.Int).Mul(x, pow10(b.scale-a.scale))
	} else {
		y = new(big.Int).Mul(y, pow10(a.scale-b.scale))
	}
	return x.Cmp(y)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// addDecimal is numeric_add: the result's scale is the larger scale.
func addDecimal(a, b *decimal) (*decimal, error) {
	switch {
	case a.kind == numNaN || b.kind == numNaN:
		return &decimal{kind: numNaN}, nil
	case a.kind != numFinite && b.kind != numFinite:
		if a.kind != b.kind {
			return &decimal{kind: numNaN}, nil // Infinity + -Infinity
		}
		return &decimal{kind: a.kind}, nil
	case a.kind != numFinite:
		return &decimal{kind: a.kind}, nil
	case b.kind != numFinite:
		return &decimal{kind: b.kind}, nil
	}
	r := &decimal{scale: max(a.scale, b.scale)}
	x, y := &a.coef, &b.coef
	if a.scale < r.scale {
		x = new(big.Int).Mul(x, pow10(r.scale-a.scale))
	}
	if b.scale < r.scale {
		y = new(big.Int).Mul(y, pow10(r.scale-b.scale))
	}
	r.coef.Add(x, y)
	return r, r.check()
}

// divScale is numeric.c's select_div_scale: at least numMinSigDigits
// significant digits, no fewer than either input's display scale.
func divScale(a, b *decimal) int {
	w1, f1 := a.weightAndFirst()
	w2, f2 := b.weightAndFirst()
	qweight := w1 - w2
	if f1 <= f2 {
		qweight--
	}
	rscale := numMinSigDigits - qweight*4
	rscale = max(rscale, a.scale, b.scale, 0)
	return min(rscale, numMaxDisplayScale)
}

// divDecimal is numeric_div for a finite, nonzero divisor: the exact
// quotient rounded half away from zero at divScale digits.
func divDecimal(a, b *decimal) (*decimal, error) {
	if b.kind != numFinite || b.coef.Sign() == 0 {
		return nil, internal("numeric division by %s", b)
	}
	switch a.kind {
	case numNaN:
		return &decimal{kind: numNaN}, nil
	case numPosInf, numNegInf:
		if (a.kind == numPosInf) == (b.coef.Sign() > 0) {
			return &decimal{kind: numPosInf}, nil
		}
		return &decimal{kind: numNegInf}, nil
	}
	rscale := divScale(a, b)
	// a/b * 10^rscale = A * 10^(sb+rscale) / (B * 10^sa)
	n := new(big.Int).Abs(&a.coef)
	n.Mul(n, pow10(b.scale+rscale))
	den := new(big.Int).Abs(&b.coef)
	den.Mul(den, pow10(a.scale))
	q, rem := new(big.Int).QuoRem(n, den, new(big.Int))
	if rem.Lsh(rem, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if a.coef.Sign()*b.coef.Sign() < 0 {
		q.Neg(q)
	}
	r := &decimal{scale: rscale}
	r.coef.Set(q)
	return r, r.check()
}

// float64 converts as numeric_float8 does (through the decimal text, so
// correctly rounded).
func (d *decimal) float64() float64 {
	switch d.kind {
	case numNaN:
		return nan()
	case numPosInf:
		return inf(1)
	case numNegInf:
		return inf(-1)
	}
	f, _ := strconv.ParseFloat(d.String(), 64)
	return f
}

// appendCanon appends a form equal for equal values (1.0 and 1.00 alike),
// for grouping and DISTINCT.
func (d *decimal) appendCanon(buf []byte) []byte {
	if d.kind != numFinite {
		return append(buf, 'n', byte(d.kind))
	}
	s := d.coef.String()
	exp := -d.scale
	if s == "0" {
		return append(buf, 'z')
	}
	for len(s) > 1 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
		exp++
	}
	buf = append(buf, 'f')
	buf = append(buf, s...)
	buf = append(buf, 'e')
	return strconv.AppendInt(buf, int64(exp), 10)
}
