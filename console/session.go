package console

// A console session: the proxy plays the whole server. It greets the client
// with the parameters drivers check, then answers simple queries and the
// extended protocol (Parse/Bind/Describe/Execute/Sync) itself. There are no
// transactions, so every ReadyForQuery says idle, and portals live until
// the next Sync.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/wire"
)

// SQLSTATEs the console needs that the proxy uses nowhere else.
const (
	invalidCursorName pgerror.Code = "34000"
	duplicateCursor   pgerror.Code = "42P03"
)

// serverVersion is what the console reports as server_version. psql and
// drivers parse it to pick features; a PostgreSQL-like number keeps them
// from warning or refusing, and the suffix says who is answering.
const serverVersion = "16.0 (shardproxy admin console)"

// Serve runs a client's console session after login, until the client
// terminates, the connection fails, ctx ends or the wire server drains.
// Only admin users get a session; others are refused with 42501.
func Serve(ctx context.Context, c *wire.Conn, src Source) error {
	if !c.Admin {
		c.Goodbye(pgerror.Fatal(pgerror.InsufficientPrivilege, "permission denied for database %q", c.Database).
			WithDetail("The admin console is open to admin users only.").
			WithHint("connect as a user configured with admin: true, or to another database"))
		return nil
	}
	s := &session{c: c, src: src, stmts: map[string]*prepared{}, portals: map[string]*portal{}}
	if err := s.greet(); err != nil {
		return err
	}
	// A cancelled ctx wakes a blocked read; the loop then says goodbye.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		if !c.BeginIdle() {
			shutdownGoodbye(c)
			return nil
		}
		typ, body, err := c.ReadMessage()
		c.EndIdle()
		if err != nil {
			return s.readFailed(ctx, err)
		}
		if s.skipping && typ != 'S' && typ != 'X' {
			// After an error in an extended-protocol batch PostgreSQL
			// ignores everything up to the Sync; so does the console.
			continue
		}
		done, err := s.dispatch(typ, body)
		if err != nil || done {
			return err
		}
	}
}

type session struct {
	c   *wire.Conn
	src Source
	// stmts are the prepared statements by name ("" is the unnamed one);
	// portals are the bound ones, dropped at Sync.
	stmts   map[string]*prepared
	portals map[string]*portal
	// skipping: an extended-protocol message failed; ignore until Sync.
	skipping bool
}

// prepared is a parsed statement; cmd is nil for an empty query.
type prepared struct {
	cmd       *command
	paramOIDs []uint32
}

// portal is a bound statement: its result formats and, once executed, its
// rows and how many were sent (Execute with a row limit suspends it).
type portal struct {
	cmd      *command
	formats  []int16 // one per column
	rows     [][]value
	executed bool
	sent     int
}

func (s *session) greet() error {
	params := map[string]string{
		"server_version":              serverVersion,
		"server_encoding":             "UTF8",
		"client_encoding":             "UTF8", // pgx refuses anything else
		"DateStyle":                   "ISO, MDY",
		"IntervalStyle":               "postgres",
		"TimeZone":                    "UTC",
		"integer_datetimes":           "on",
		"standard_conforming_strings": "on", // pgx's simple protocol needs it
		"is_superuser":                "off",
		"session_authorization":       s.c.User,
		"application_name":            s.c.Params["application_name"],
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := s.c.Send(&pgproto3.ParameterStatus{Name: k, Value: params[k]}); err != nil {
			return err
		}
	}
	// No BackendKeyData: a console query never runs long enough to cancel,
	// and a key would suggest the proxy routes its cancels.
	return s.ready()
}

func (s *session) ready() error {
	if err := s.c.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'}); err != nil {
		return err
	}
	return s.c.Flush()
}

// dispatch handles one client message; done is true when the session ends.
func (s *session) dispatch(typ byte, body []byte) (done bool, err error) {
	switch typ {
	case 'Q':
		return false, s.simpleQuery(body)
	case 'P':
		return false, s.extended(s.parse(body))
	case 'B':
		return false, s.extended(s.bind(body))
	case 'D':
		return false, s.extended(s.describe(body))
	case 'E':
		return false, s.extended(s.execute(body))
	case 'C':
		return false, s.extended(s.closeMsg(body))
	case 'H':
		return false, s.c.Flush()
	case 'S':
		s.skipping = false
		clear(s.portals)
		return false, s.ready()
	case 'F':
		if err := s.c.SendError(pgerror.New(pgerror.FeatureNotSupported, "the admin console does not run functions")); err != nil {
			return false, err
		}
		return false, s.ready()
	case 'd', 'c', 'f':
		// PostgreSQL ignores copy messages outside COPY.
		return false, nil
	case 'X':
		return true, nil
	default:
		s.c.Goodbye(pgerror.Fatal(pgerror.ProtocolViolation, "invalid frontend message type %d", typ))
		return true, nil
	}
}

// clientError is an error the client is told about in its turn; any other
// error from a handler is a failed write and ends the session.
type clientError struct{ pe *pgerror.Error }

func (e *clientError) Error() string { return e.pe.Error() }

func fail(pe *pgerror.Error) error { return &clientError{pe: pe} }

// extended finishes an extended-protocol message: an error is reported and
// the batch skipped to its Sync.
func (s *session) extended(err error) error {
	var ce *clientError
	if errors.As(err, &ce) {
		s.skipping = true
		return s.c.SendError(ce.pe)
	}
	return err
}

func malformed(what string) error {
	return fail(pgerror.New(pgerror.ProtocolViolation, "invalid %s message format", what))
}

func (s *session) simpleQuery(body []byte) error {
	var q pgproto3.Query
	if err := q.Decode(body); err != nil {
		if err := s.c.SendError(pgerror.New(pgerror.ProtocolViolation, "invalid Query message format")); err != nil {
			return err
		}
		return s.ready()
	}
	// A simple query ends the unnamed statement and portal, as in PostgreSQL.
	delete(s.stmts, "")
	delete(s.portals, "")
	stmts, perr := parseQuery(q.String)
	switch {
	case perr != nil:
		if err := s.c.SendError(perr); err != nil {
			return err
		}
	case len(stmts) == 0:
		if err := s.c.Send(&pgproto3.EmptyQueryResponse{}); err != nil {
			return err
		}
	}
	for _, st := range stmts {
		if st.err != nil {
			// The rest of the string is not run, as in PostgreSQL.
			if err := s.c.SendError(st.err); err != nil {
				return err
			}
			break
		}
		if err := s.c.Send(rowDescription(st.cmd, nil)); err != nil {
			return err
		}
		if err := s.sendRows(st.cmd, st.cmd.run(s.src), nil); err != nil {
			return err
		}
		if err := s.complete(); err != nil {
			return err
		}
	}
	return s.ready()
}

func (s *session) parse(body []byte) error {
	var m pgproto3.Parse
	if err := m.Decode(body); err != nil {
		return malformed("Parse")
	}
	if _, ok := s.stmts[m.Name]; ok && m.Name != "" {
		return fail(pgerror.New(pgerror.DuplicatePreparedStatement, "prepared statement %q already exists", m.Name))
	}
	stmts, perr := parseQuery(m.Query)
	if perr != nil {
		return fail(perr)
	}
	p := &prepared{paramOIDs: append([]uint32(nil), m.ParameterOIDs...)}
	switch {
	case len(stmts) > 1:
		return fail(pgerror.New(pgerror.SyntaxError, "cannot insert multiple commands into a prepared statement"))
	case len(stmts) == 1 && stmts[0].err != nil:
		return fail(stmts[0].err)
	case len(stmts) == 1:
		p.cmd = stmts[0].cmd
	}
	s.stmts[m.Name] = p
	return s.c.Send(&pgproto3.ParseComplete{})
}

func (s *session) bind(body []byte) error {
	var m pgproto3.Bind
	if err := m.Decode(body); err != nil {
		return malformed("Bind")
	}
	p, ok := s.stmts[m.PreparedStatement]
	if !ok {
		return fail(pgerror.New(pgerror.InvalidSQLStatementName, "prepared statement %q does not exist", m.PreparedStatement))
	}
	if _, ok := s.portals[m.DestinationPortal]; ok && m.DestinationPortal != "" {
		return fail(pgerror.New(duplicateCursor, "portal %q already exists", m.DestinationPortal))
	}
	if n := len(m.ParameterFormatCodes); n > 1 && n != len(m.Parameters) {
		return fail(pgerror.New(pgerror.ProtocolViolation, "bind message has %d parameter formats but %d parameters", n, len(m.Parameters)))
	}
	if len(m.Parameters) != len(p.paramOIDs) {
		return fail(pgerror.New(pgerror.ProtocolViolation, "bind message supplies %d parameters, but prepared statement %q requires %d",
			len(m.Parameters), m.PreparedStatement, len(p.paramOIDs)))
	}
	pt := &portal{cmd: p.cmd}
	if p.cmd != nil {
		formats, err := resultFormats(m.ResultFormatCodes, len(p.cmd.cols))
		if err != nil {
			return err
		}
		pt.formats = formats
	}
	s.portals[m.DestinationPortal] = pt
	return s.c.Send(&pgproto3.BindComplete{})
}

// resultFormats expands a Bind's result format codes to one per column.
func resultFormats(codes []int16, ncols int) ([]int16, error) {
	formats := make([]int16, ncols)
	switch len(codes) {
	case 0:
	case 1:
		for i := range formats {
			formats[i] = codes[0]
		}
	case ncols:
		copy(formats, codes)
	default:
		return nil, fail(pgerror.New(pgerror.ProtocolViolation, "bind message has %d result formats but query has %d columns", len(codes), ncols))
	}
	for _, f := range formats {
		if f != 0 && f != 1 {
			return nil, fail(pgerror.New(pgerror.InvalidParameterValue, "unsupported format code: %d", f))
		}
	}
	return formats, nil
}

func (s *session) describe(body []byte) error {
	var m pgproto3.Describe
	if err := m.Decode(body); err != nil {
		return malformed("Describe")
	}
	switch m.ObjectType {
	case 'S':
		p, ok := s.stmts[m.Name]
		if !ok {
			return fail(pgerror.New(pgerror.InvalidSQLStatementName, "prepared statement %q does not exist", m.Name))
		}
		oids := p.paramOIDs
		if oids == nil {
			oids = []uint32{}
		}
		if err := s.c.Send(&pgproto3.ParameterDescription{ParameterOIDs: oids}); err != nil {
			return err
		}
		if p.cmd == nil {
			return s.c.Send(&pgproto3.NoData{})
		}
		return s.c.Send(rowDescription(p.cmd, nil))
	case 'P':
		pt, ok := s.portals[m.Name]
		if !ok {
			return fail(pgerror.New(invalidCursorName, "portal %q does not exist", m.Name))
		}
		if pt.cmd == nil {
			return s.c.Send(&pgproto3.NoData{})
		}
		return s.c.Send(rowDescription(pt.cmd, pt.formats))
	default:
		return fail(pgerror.New(pgerror.ProtocolViolation, "invalid DESCRIBE message subtype %d", m.ObjectType))
	}
}

func (s *session) execute(body []byte) error {
	var m pgproto3.Execute
	if err := m.Decode(body); err != nil {
		return malformed("Execute")
	}
	pt, ok := s.portals[m.Portal]
	if !ok {
		return fail(pgerror.New(invalidCursorName, "portal %q does not exist", m.Portal))
	}
	if pt.cmd == nil {
		return s.c.Send(&pgproto3.EmptyQueryResponse{})
	}
	if !pt.executed {
		pt.rows, pt.executed = pt.cmd.run(s.src), true
	}
	rest := pt.rows[pt.sent:]
	if m.MaxRows > 0 && uint64(len(rest)) > uint64(m.MaxRows) {
		rest = rest[:m.MaxRows]
		pt.sent += len(rest)
		if err := s.sendRows(pt.cmd, rest, pt.formats); err != nil {
			return err
		}
		return s.c.Send(&pgproto3.PortalSuspended{})
	}
	pt.sent += len(rest)
	if err := s.sendRows(pt.cmd, rest, pt.formats); err != nil {
		return err
	}
	return s.complete()
}

func (s *session) closeMsg(body []byte) error {
	var m pgproto3.Close
	if err := m.Decode(body); err != nil {
		return malformed("Close")
	}
	switch m.ObjectType {
	case 'S':
		delete(s.stmts, m.Name)
	case 'P':
		delete(s.portals, m.Name)
	default:
		return fail(pgerror.New(pgerror.ProtocolViolation, "invalid CLOSE message subtype %d", m.ObjectType))
	}
	return s.c.Send(&pgproto3.CloseComplete{})
}

func (s *session) complete() error {
	return s.c.Send(&pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
}

// rowDescription describes cmd's columns in the given formats (nil: text).
func rowDescription(cmd *command, formats []int16) *pgproto3.RowDescription {
	fields := make([]pgproto3.FieldDescription, len(cmd.cols))
	for i, col := range cmd.cols {
		size := int16(-1)
		if col.oid == oidInt8 {
			size = 8
		}
		fields[i] = pgproto3.FieldDescription{Name: []byte(col.name), DataTypeOID: col.oid, DataTypeSize: size, TypeModifier: -1}
		if formats != nil {
			fields[i].Format = formats[i]
		}
	}
	return &pgproto3.RowDescription{Fields: fields}
}

// sendRows sends rows as DataRows in the given formats (nil: text).
func (s *session) sendRows(cmd *command, rows [][]value, formats []int16) error {
	var cells [][]byte
	for _, row := range rows {
		cells = cells[:0]
		for i, v := range row {
			switch {
			case v.null:
				cells = append(cells, nil)
			case formats != nil && formats[i] == 1 && cmd.cols[i].oid == oidInt8:
				cells = append(cells, binaryInt8(v.text))
			default:
				// Text is the same in both formats.
				cells = append(cells, []byte(v.text))
			}
		}
		if err := s.c.Send(&pgproto3.DataRow{Values: cells}); err != nil {
			return err
		}
	}
	return nil
}

// binaryInt8 is the binary form of an int8 column kept as decimal text.
func binaryInt8(t string) []byte {
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		// Beyond int64 (a huge uint64): wrap as the bits a client reads.
		u, _ := strconv.ParseUint(t, 10, 64)
		n = int64(u)
	}
	return binary.BigEndian.AppendUint64(nil, uint64(n))
}

// readFailed ends the session after a failed read, saying goodbye when the
// proxy is the one ending it.
func (s *session) readFailed(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && (s.c.Draining() || ctx.Err() != nil):
		shutdownGoodbye(s.c)
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return nil
	}
	var pe *pgerror.Error
	if errors.As(err, &pe) {
		// An oversized or malformed frame: the stream cannot be trusted.
		fatal := *pe
		fatal.Severity = pgerror.SeverityFatal
		s.c.Goodbye(&fatal)
	}
	return err
}

func shutdownGoodbye(c *wire.Conn) {
	c.Goodbye(pgerror.Fatal(pgerror.AdminShutdown, "terminating connection due to administrator command").
		WithHint("the proxy is shutting down; reconnect to another node"))
}
