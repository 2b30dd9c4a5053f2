package merge

// Internals the external tests check directly: the number formats and the
// numeric arithmetic, whose rules are easier to pin down one value at a
// time than through a whole plan.

func FormatFloat8(f float64) string { return string(appendFloatText(nil, f, 64)) }
func FormatFloat4(f float32) string { return string(appendFloatText(nil, float64(f), 32)) }

func ParseFloat(s string, bits int) (float64, error) { return parseFloat(s, bits) }

// NumericText reads s as numeric_in would and prints it as numeric_out.
func NumericText(s string) (string, error) {
	d, err := parseNumeric(s)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// NumericBinary reads s and writes numeric_send's bytes.
func NumericBinary(s string) ([]byte, error) {
	d, err := parseNumeric(s)
	if err != nil {
		return nil, err
	}
	return d.appendBinary(nil), nil
}

// NumericFromBinary reads numeric_send's bytes and prints numeric_out.
func NumericFromBinary(b []byte) (string, error) {
	d, err := decodeNumericBinary(b)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

func NumericDiv(a, b string) (string, error) {
	x, err := parseNumeric(a)
	if err != nil {
		return "", err
	}
	y, err := parseNumeric(b)
	if err != nil {
		return "", err
	}
	q, err := divDecimal(x, y)
	if err != nil {
		return "", err
	}
	return q.String(), nil
}

func NumericAdd(a, b string) (string, error) {
	x, err := parseNumeric(a)
	if err != nil {
		return "", err
	}
	y, err := parseNumeric(b)
	if err != nil {
		return "", err
	}
	s, err := addDecimal(x, y)
	if err != nil {
		return "", err
	}
	return s.String(), nil
}

func NumericCompare(a, b string) (int, error) {
	x, err := parseNumeric(a)
	if err != nil {
		return 0, err
	}
	y, err := parseNumeric(b)
	if err != nil {
		return 0, err
	}
	return cmpDecimal(x, y), nil
}

// CompareText decodes two text-format values of the type and compares them.
func CompareText(oid uint32, a, b string) (int, error) {
	c := column{oid: oid, format: 0}
	c.kind, c.name = typeOf(oid)
	x, err := c.decodeText(a)
	if err != nil {
		return 0, err
	}
	y, err := c.decodeText(b)
	if err != nil {
		return 0, err
	}
	return compareDatum(c.kind, x, y), nil
}

// CompareBinary is CompareText for binary values.
func CompareBinary(oid uint32, a, b []byte) (int, error) {
	c := column{oid: oid, format: 1}
	c.kind, c.name = typeOf(oid)
	x, err := c.decodeBinary(a)
	if err != nil {
		return 0, err
	}
	y, err := c.decodeBinary(b)
	if err != nil {
		return 0, err
	}
	return compareDatum(c.kind, x, y), nil
}
