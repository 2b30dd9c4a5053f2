package console

// Hooks for the black-box tests in console_test.

// ParseQuery runs the query parser and summarises its result: per
// statement the command's name ("shards") or "error <SQLSTATE>", and the
// error that fails the whole string, if any.
func ParseQuery(q string) ([]string, error) {
	stmts, perr := parseQuery(q)
	if perr != nil {
		return nil, perr
	}
	out := make([]string, len(stmts))
	for i, st := range stmts {
		if st.err != nil {
			out[i] = "error " + string(st.err.Code)
		} else {
			out[i] = st.cmd.name
		}
	}
	return out, nil
}
