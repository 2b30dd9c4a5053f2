package router

// A fake PostgreSQL server for benchmarks of the proxy's hot path: it
// logs anyone in with trust authentication and answers the simple and
// extended protocol from canned results, so a benchmark measures the
// proxy rather than a database. Its per-query work allocates nothing
// (answers are encoded once per statement text), so allocs/op reported
// by a benchmark are the proxy's own.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

type fakeBackend struct {
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	nextPID uint32
	// trace, if set, is called with every statement text the backend
	// receives (Query and Parse), for debugging.
	trace func(kind byte, query string)
	// syncs and flushes count the Sync and Flush messages received.
	syncs, flushes atomic.Int64
	// stall picks simple queries the backend never answers, with the
	// connection left open: a server that hangs (set by withStall).
	stall func(query string) bool
}

// withStall makes the backend never answer the simple queries stall picks.
func withStall(stall func(query string) bool) func(*fakeBackend) {
	return func(f *fakeBackend) { f.stall = stall }
}

// startFakeBackend listens on 127.0.0.1:0; it is closed when tb ends.
func startFakeBackend(tb testing.TB, options ...func(*fakeBackend)) *fakeBackend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fakeBackend{ln: ln, conns: map[net.Conn]struct{}{}, nextPID: 1000}
	if os.Getenv("FAKEPG_TRACE") != "" {
		f.trace = func(kind byte, q string) { fmt.Fprintf(os.Stderr, "fakepg %c %q\n", kind, q) }
	}
	for _, o := range options {
		o(f)
	}
	f.wg.Add(1)
	go f.accept()
	tb.Cleanup(f.Close)
	return f
}

func (f *fakeBackend) Addr() string { return f.ln.Addr().String() }

// Close stops listening, closes every connection and waits for their
// goroutines.
func (f *fakeBackend) Close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for nc := range f.conns {
		_ = nc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeBackend) accept() {
	defer f.wg.Done()
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[nc] = struct{}{}
		f.nextPID++
		pid := f.nextPID
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() {
				f.mu.Lock()
				delete(f.conns, nc)
				f.mu.Unlock()
				_ = nc.Close()
			}()
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			if !f.startup(nc, pid) {
				return
			}
			fc := &fakeConn{
				f:       f,
				r:       bufio.NewReaderSize(nc, 16<<10),
				w:       bufio.NewWriterSize(nc, 16<<10),
				tx:      'I',
				results: map[string]*fakeResult{},
				simple:  map[string]*fakeSimple{},
				stmts:   map[string]*fakeResult{},
				portals: map[string]*fakeResult{},
			}
			_ = fc.loop()
		}()
	}
}

// startup answers the startup packet with trust authentication. The
// client sends nothing more until ReadyForQuery, so nothing the
// pgproto3.Backend may have buffered is lost when the raw loop takes over.
func (f *fakeBackend) startup(nc net.Conn, pid uint32) bool {
	be := pgproto3.NewBackend(nc, nc)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return false
		}
		switch msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := nc.Write([]byte{'N'}); err != nil {
				return false
			}
			continue
		case *pgproto3.CancelRequest:
			return false // nothing runs long enough to cancel
		case *pgproto3.StartupMessage:
		default:
			return false
		}
		break
	}
	be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{
		{"server_version", "17.0"},
		{"client_encoding", "UTF8"},
		{"standard_conforming_strings", "on"},
		{"DateStyle", "ISO, MDY"},
		{"integer_datetimes", "on"},
	} {
		be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: pid, SecretKey: []byte{1, 2, 3, 4}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return be.Flush() == nil
}

// fakeResult is the canned answer to one statement text.
type fakeResult struct {
	paramDesc []byte // ParameterDescription frame
	desc      []byte // RowDescription frame, or NoData
	rows      []byte // DataRow frames
	complete  []byte // CommandComplete (or EmptyQueryResponse) frame
	txAfter   byte   // transaction status after it runs (0: unchanged)
}

// fakeSimple is the answer to one simple Query text.
type fakeSimple struct {
	answer  []byte
	txAfter byte
}

type fakeConn struct {
	f      *fakeBackend
	r      *bufio.Reader
	w      *bufio.Writer
	header [5]byte
	body   []byte
	tx     byte

	results map[string]*fakeResult // by statement text
	simple  map[string]*fakeSimple // by Query text
	stmts   map[string]*fakeResult // prepared statements by name
	portals map[string]*fakeResult // bound portals by name
	skip    bool                   // after an error, until Sync
}

func (c *fakeConn) loop() error {
	for {
		if _, err := io.ReadFull(c.r, c.header[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(c.header[1:])) - 4
		if n < 0 || n > 1<<24 {
			return errors.New("fake backend: bad frame length")
		}
		if cap(c.body) < n {
			c.body = make([]byte, n)
		}
		body := c.body[:n]
		if _, err := io.ReadFull(c.r, body); err != nil {
			return err
		}
		typ := c.header[0]
		if c.skip && typ != 'S' && typ != 'X' {
			continue
		}
		switch typ {
		case 'Q':
			q := cstring(body)
			if c.f.stall != nil && c.f.stall(string(q)) {
				continue
			}
			sr, ok := c.simple[string(q)]
			if !ok {
				sr = c.simpleFor(string(q))
				c.simple[string(q)] = sr
			}
			c.w.Write(sr.answer)
			if sr.txAfter != 0 {
				c.tx = sr.txAfter
			}
			c.ready()
			if err := c.w.Flush(); err != nil {
				return err
			}
		case 'P':
			var p pgproto3.Parse
			if err := p.Decode(body); err != nil {
				return err
			}
			if c.f.trace != nil {
				c.f.trace('P', p.Query)
			}
			res := c.resultFor(p.Query, p.ParameterOIDs)
			if p.Name != "" {
				if _, dup := c.stmts[p.Name]; dup {
					c.fail("42P05", "prepared statement \""+p.Name+"\" already exists")
					continue
				}
			}
			c.stmts[p.Name] = res
			c.w.Write(parseCompleteFrame)
		case 'B':
			portal := cstring(body)
			stmt := cstring(body[len(portal)+1:])
			res, ok := c.stmts[string(stmt)]
			if !ok {
				c.fail("26000", "prepared statement \""+string(stmt)+"\" does not exist")
				continue
			}
			if old, ok := c.portals[string(portal)]; !ok || old != res {
				c.portals[string(portal)] = res
			}
			c.w.Write(bindCompleteFrame)
		case 'D':
			if len(body) < 2 {
				return errors.New("fake backend: bad Describe")
			}
			name := cstring(body[1:])
			var res *fakeResult
			var ok bool
			if body[0] == 'S' {
				res, ok = c.stmts[string(name)]
			} else {
				res, ok = c.portals[string(name)]
			}
			if !ok {
				c.fail("26000", "object \""+string(name)+"\" does not exist")
				continue
			}
			if body[0] == 'S' {
				c.w.Write(res.paramDesc)
			}
			c.w.Write(res.desc)
		case 'E':
			res, ok := c.portals[string(cstring(body))]
			if !ok {
				c.fail("34000", "portal \""+string(cstring(body))+"\" does not exist")
				continue
			}
			c.w.Write(res.rows)
			c.w.Write(res.complete)
			if res.txAfter != 0 {
				c.tx = res.txAfter
			}
		case 'C':
			if len(body) < 2 {
				return errors.New("fake backend: bad Close")
			}
			name := cstring(body[1:])
			if body[0] == 'S' {
				delete(c.stmts, string(name))
			} else {
				delete(c.portals, string(name))
			}
			c.w.Write(closeCompleteFrame)
		case 'H':
			c.f.flushes.Add(1)
			if err := c.w.Flush(); err != nil {
				return err
			}
		case 'S':
			c.f.syncs.Add(1)
			c.skip = false
			// Unnamed portals end with the implicit transaction.
			delete(c.portals, "")
			c.ready()
			if err := c.w.Flush(); err != nil {
				return err
			}
		case 'X':
			return nil
		default:
			c.fail("08P01", "fake backend: unsupported message type "+string(rune(typ)))
		}
	}
}

func (c *fakeConn) ready() {
	c.w.Write([]byte{'Z', 0, 0, 0, 5, c.tx})
}

func (c *fakeConn) fail(code, msg string) {
	buf, _ := (&pgproto3.ErrorResponse{Severity: "ERROR", Code: code, Message: msg}).Encode(nil)
	c.w.Write(buf)
	c.skip = true
}

var bindCompleteFrame = []byte{'2', 0, 0, 0, 4}

func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// simpleFor encodes the answer to a simple Query: each statement's
// RowDescription, DataRows and CommandComplete (no ReadyForQuery).
func (c *fakeConn) simpleFor(q string) *fakeSimple {
	if c.f.trace != nil {
		c.f.trace('Q', q)
	}
	sr := &fakeSimple{}
	parts := splitStatements(q)
	if len(parts) == 0 {
		sr.answer = []byte{'I', 0, 0, 0, 4} // EmptyQueryResponse
		return sr
	}
	for _, p := range parts {
		res := c.resultFor(p, nil)
		if !bytes.Equal(res.desc, noDataFrame) {
			sr.answer = append(sr.answer, res.desc...)
		}
		sr.answer = append(sr.answer, res.rows...)
		sr.answer = append(sr.answer, res.complete...)
		if res.txAfter != 0 {
			sr.txAfter = res.txAfter
		}
	}
	return sr
}

var noDataFrame = []byte{'n', 0, 0, 0, 4}

// resultFor returns the canned answer to a statement: a SELECT without
// system catalogs returns one int4 row (1); the proxy's own catalog and
// settings queries return no rows; other commands return their tag.
func (c *fakeConn) resultFor(q string, paramOIDs []uint32) *fakeResult {
	if r, ok := c.results[q]; ok && paramOIDs == nil {
		return r
	}
	res := &fakeResult{}
	nparams := len(paramOIDs)
	for i := 0; i < len(q); i++ {
		if q[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		if n, err := strconv.Atoi(q[i+1 : j]); err == nil && n > nparams {
			nparams = n
		}
	}
	pd := pgproto3.ParameterDescription{ParameterOIDs: make([]uint32, nparams)}
	for i := range pd.ParameterOIDs {
		pd.ParameterOIDs[i] = 25
		if i < len(paramOIDs) && paramOIDs[i] != 0 {
			pd.ParameterOIDs[i] = paramOIDs[i]
		}
	}
	res.paramDesc, _ = pd.Encode(nil)

	trimmed := strings.TrimSpace(q)
	word := strings.ToUpper(trimmed)
	if i := strings.IndexAny(word, " \t\n(;"); i >= 0 {
		word = word[:i]
	}
	switch word {
	case "SELECT", "WITH", "VALUES", "SHOW", "TABLE":
		if strings.Contains(q, "pg_catalog") || strings.Contains(q, "pg_settings") || word == "SHOW" {
			rd := pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
				{Name: []byte("name"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1},
				{Name: []byte("setting"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1},
			}}
			res.desc, _ = rd.Encode(nil)
			res.complete, _ = (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")}).Encode(nil)
		} else {
			rd := pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
				{Name: []byte("?column?"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1},
			}}
			res.desc, _ = rd.Encode(nil)
			res.rows, _ = (&pgproto3.DataRow{Values: [][]byte{[]byte("1")}}).Encode(nil)
			res.complete, _ = (&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}).Encode(nil)
		}
	case "":
		res.desc = noDataFrame
		res.complete = []byte{'I', 0, 0, 0, 4}
	default:
		tag := word
		switch word {
		case "BEGIN", "START":
			tag, res.txAfter = "BEGIN", 'T'
		case "COMMIT", "END":
			tag, res.txAfter = "COMMIT", 'I'
		case "ROLLBACK", "ABORT":
			tag, res.txAfter = "ROLLBACK", 'I'
		case "DISCARD":
			tag = "DISCARD ALL"
		}
		res.desc = noDataFrame
		res.complete, _ = (&pgproto3.CommandComplete{CommandTag: []byte(tag)}).Encode(nil)
	}
	if paramOIDs == nil {
		c.results[q] = res
	}
	return res
}

// splitStatements splits a simple Query at semicolons outside quotes.
func splitStatements(q string) []string {
	var out []string
	start := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else if ch == '\\' && quote == '\'' && i+1 < len(q) {
				i++
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == ';':
			if s := strings.TrimSpace(q[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(q[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
