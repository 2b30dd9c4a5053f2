// A raw protocol client: it speaks pgproto3 frames with no driver in between,
// so the suite sees exactly the messages a server (or the proxy) sends, in
// their order, and can write sequences no driver would produce. Every answer
// is turned into a normalised JSON line at once (a received message is valid
// only until the next Receive).
package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/test/testenv"
)

// readTimeout bounds every wait for an answer. PostgreSQL answers these
// sequences in milliseconds; a proxy that never answers must not hang the
// suite, and the missing answer shows up in the transcript instead.
const readTimeout = 5 * time.Second

// step is one round of a case: messages written in one go, then answers
// read until RFQ ReadyForQuery messages arrived or, for rounds that end in
// Flush or wait for COPY, until Msgs messages arrived.
type step struct {
	Send []pgproto3.FrontendMessage
	RFQ  int
	Msgs int
}

type rawClient struct {
	conn   net.Conn
	fe     *pgproto3.Frontend
	broken bool // a read failed: the conversation cannot be trusted further
}

// dialRaw connects as the trust user, with any extra startup parameters,
// and returns the client with the normalised startup answers.
func dialRaw(addr string, extra map[string]string) (*rawClient, []string, error) {
	conn, err := net.DialTimeout("tcp", addr, readTimeout)
	if err != nil {
		return nil, nil, err
	}
	c := &rawClient{conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
	params := map[string]string{"user": testenv.TrustUser, "database": testenv.Database}
	for k, v := range extra {
		params[k] = v
	}
	c.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params})
	if err := c.fe.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	var lines []string
	for {
		msg, err := c.receive()
		if err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("startup: %w (after %v)", err, lines)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			conn.Close()
			return nil, nil, fmt.Errorf("startup refused: %s %s", e.Code, e.Message)
		}
		if l, keep := normalise(msg); keep {
			lines = append(lines, l)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return c, sortParameterStatus(lines), nil
		}
	}
}

func (c *rawClient) receive() (pgproto3.BackendMessage, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(readTimeout)); err != nil {
		return nil, err
	}
	return c.fe.Receive()
}

// run plays one step and appends what came back to the transcript. A read
// that times out or fails is recorded as a line of its own and ends the
// conversation: later steps are recorded as not run.
func (c *rawClient) run(st step) []string {
	if c.broken {
		return []string{"<not run: the connection failed earlier>"}
	}
	for _, m := range st.Send {
		c.fe.Send(m)
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(readTimeout))
	if err := c.fe.Flush(); err != nil {
		c.broken = true
		return []string{"<send failed: " + describeNetErr(err) + ">"}
	}
	var lines []string
	rfq, n := 0, 0
	for {
		if st.RFQ > 0 && rfq >= st.RFQ || st.RFQ == 0 && n >= st.Msgs {
			return lines
		}
		msg, err := c.receive()
		if err != nil {
			c.broken = true
			return append(lines, "<receive failed: "+describeNetErr(err)+">")
		}
		n++
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			rfq++
		}
		if l, keep := normalise(msg); keep {
			lines = append(lines, l)
		}
	}
}

func (c *rawClient) close() {
	if !c.broken {
		c.fe.Send(&pgproto3.Terminate{})
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.fe.Flush()
	}
	_ = c.conn.Close()
}

// describeNetErr names a failure without addresses or timings, so that two
// transcripts that fail the same way compare equal.
func describeNetErr(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s", readTimeout)
	case strings.Contains(err.Error(), "EOF"), strings.Contains(err.Error(), "connection reset"):
		return "connection closed by the server"
	}
	return err.Error()
}

// normalise turns a backend message into its comparable JSON line. It drops
// BackendKeyData (the proxy issues its own keys by design) and the source
// location of errors and notices (File, Line, Routine name PostgreSQL's C
// code, which differs between builds, and a proxy-made error has none).
// Everything else, including ParameterStatus values, must match: the proxy
// relays the server's own.
func normalise(msg pgproto3.BackendMessage) (string, bool) {
	var v any = msg
	switch m := msg.(type) {
	case *pgproto3.BackendKeyData:
		return "", false
	case *pgproto3.ErrorResponse:
		v = errorJSON("ErrorResponse", *m)
	case *pgproto3.NoticeResponse:
		v = errorJSON("NoticeResponse", pgproto3.ErrorResponse(*m))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<cannot marshal %T: %v>", msg, err), true
	}
	return string(b), true
}

// errorJSON is ErrorResponse's JSON without File, Line and Routine.
func errorJSON(typ string, e pgproto3.ErrorResponse) any {
	return struct {
		Type                                string
		Severity, SeverityUnlocalized, Code string
		Message, Detail, Hint               string
		Position, InternalPosition          int32           `json:",omitempty"`
		InternalQuery, Where                string          `json:",omitempty"`
		SchemaName, TableName, ColumnName   string          `json:",omitempty"`
		DataTypeName, ConstraintName        string          `json:",omitempty"`
		UnknownFields                       map[byte]string `json:",omitempty"`
	}{typ, e.Severity, e.SeverityUnlocalized, e.Code, e.Message, e.Detail, e.Hint,
		e.Position, e.InternalPosition, e.InternalQuery, e.Where,
		e.SchemaName, e.TableName, e.ColumnName, e.DataTypeName, e.ConstraintName, e.UnknownFields}
}

// sortParameterStatus orders each run of ParameterStatus lines: PostgreSQL
// reports its parameters at startup in an order of its own that means
// nothing, and the proxy replays them sorted.
func sortParameterStatus(lines []string) []string {
	out := append([]string(nil), lines...)
	const prefix = `{"Type":"ParameterStatus"`
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], prefix) {
			j++
		}
		sort.Strings(out[i:j])
		if j == i {
			j++
		}
		i = j
	}
	return out
}
