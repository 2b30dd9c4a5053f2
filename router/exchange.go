package router

// One statement on several shards: the proxy runs it with the extended
// protocol on each shard's connection (writing to every shard before
// reading any answer, so the shards work at once), collects the answers
// whole, and only then lets anything reach the client. That is what makes
// a multi-shard answer all-or-nothing: a shard failing midway leaves the
// client with an error, never with part of the rows.

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/pgerror"
)

// shardStatement is what runs on one shard.
type shardStatement struct {
	shard     string
	sql       string
	paramOIDs []uint32
	// params are the Bind values and their formats, already in the
	// order the shard statement numbers them.
	params        [][]byte
	paramFormats  []int16
	resultFormats []int16
}

// shardAnswer is one shard's answer to a shardStatement.
type shardAnswer struct {
	shard   string
	fields  []pgproto3.FieldDescription // nil for NoData
	rows    [][][]byte
	tag     string
	err     *pgerror.Error
	notices [][]byte // NoticeResponse bodies
	status  byte     // the shard's transaction status afterwards
	// budget is the bytes of rows the statement may still hold (shared by
	// its shards); overflow: it ran out, the rows are being dropped.
	budget   *int64
	overflow bool
}

// rowOverhead is what a held row costs beyond its bytes (slice headers).
const rowOverhead = 64

// encodeShardStatement appends the statement as an unnamed
// Parse/Bind/Describe/Execute/Sync batch.
func encodeShardStatement(buf []byte, st *shardStatement) ([]byte, error) {
	var err error
	if buf, err = (&pgproto3.Parse{Query: st.sql, ParameterOIDs: st.paramOIDs}).Encode(buf); err != nil {
		return nil, err
	}
	bind := pgproto3.Bind{ParameterFormatCodes: st.paramFormats, Parameters: st.params, ResultFormatCodes: st.resultFormats}
	if buf, err = bind.Encode(buf); err != nil {
		return nil, err
	}
	if buf, err = (&pgproto3.Describe{ObjectType: 'P'}).Encode(buf); err != nil {
		return nil, err
	}
	if buf, err = (&pgproto3.Execute{}).Encode(buf); err != nil {
		return nil, err
	}
	return (&pgproto3.Sync{}).Encode(buf)
}

// simpleQueryFrame is a Query message.
func simpleQueryFrame(buf []byte, sql string) []byte {
	start := len(buf)
	buf = appendFrameStart(buf, 'Q')
	buf = append(append(buf, sql...), 0)
	return finishFrame(buf, start)
}

// readAnswer reads one batch's answers from a server up to its
// ReadyForQuery, keeping copies (the connection's buffer is reused).
func readAnswer(sc *serverConn, ans *shardAnswer) error {
	for {
		typ, body, err := sc.ReadMessage()
		if err != nil {
			return &serverLostError{err: err}
		}
		switch typ {
		case '1', '2', 'n', 't', 'A':
		case 'T':
			var rd pgproto3.RowDescription
			if err := rd.Decode(body); err != nil {
				return fmt.Errorf("server %s sent a bad RowDescription: %w", sc.Addr, err)
			}
			ans.fields = make([]pgproto3.FieldDescription, len(rd.Fields))
			for i, f := range rd.Fields {
				f.Name = bytes.Clone(f.Name)
				ans.fields[i] = f
			}
		case 'D':
			if ans.budget != nil {
				*ans.budget -= int64(len(body)) + rowOverhead
				if *ans.budget < 0 && ans.err == nil {
					ans.err = pgerror.New(pgerror.ProgramLimitExceeded, "the rows of this statement from several shards exceed limits.max_merge_buffer").
						WithHint("filter by key so one shard answers, add a LIMIT, or raise limits.max_merge_buffer")
					ans.overflow = true
				}
			}
			if ans.overflow {
				continue // keep reading to the ReadyForQuery, drop the rows
			}
			row, err := splitDataRow(body)
			if err != nil {
				return fmt.Errorf("server %s: %w", sc.Addr, err)
			}
			ans.rows = append(ans.rows, row)
		case 'C':
			ans.tag = string(trimNul(body))
		case 'I':
			ans.tag = ""
		case 'N':
			ans.notices = append(ans.notices, bytes.Clone(body))
		case 'S':
			var ps pgproto3.ParameterStatus
			if err := ps.Decode(body); err == nil {
				sc.ParameterStatus[ps.Name] = ps.Value
			}
		case 'E':
			var er pgproto3.ErrorResponse
			_ = er.Decode(body)
			if ans.err == nil {
				ans.err = errorFromResponse(&er)
			}
			if er.Severity == "FATAL" {
				return &serverLostError{err: ans.err}
			}
		case 'Z':
			if len(body) > 0 {
				ans.status = body[0]
				sc.txStatus = body[0]
			}
			return nil
		case 'G', 'H', 'W':
			return fmt.Errorf("server %s started a COPY inside a multi-shard statement", sc.Addr)
		default:
			return fmt.Errorf("server %s sent unexpected message type %q", sc.Addr, typ)
		}
	}
}

// splitDataRow copies a DataRow's values; nil stands for NULL.
func splitDataRow(body []byte) ([][]byte, error) {
	if len(body) < 2 {
		return nil, fmt.Errorf("short DataRow")
	}
	n := int(body[0])<<8 | int(body[1])
	p := body[2:]
	row := make([][]byte, n)
	// One allocation for the row's bytes.
	data := make([]byte, 0, len(p))
	for i := range n {
		if len(p) < 4 {
			return nil, fmt.Errorf("short DataRow")
		}
		l := int32(uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]))
		p = p[4:]
		if l < 0 {
			continue
		}
		if int(l) > len(p) {
			return nil, fmt.Errorf("short DataRow")
		}
		start := len(data)
		data = append(data, p[:l]...)
		row[i] = data[start:len(data):len(data)]
		p = p[l:]
	}
	return row, nil
}

// encodeDataRow appends a DataRow frame.
func encodeDataRow(buf []byte, row [][]byte) []byte {
	start := len(buf)
	buf = append(buf, 'D', 0, 0, 0, 0, byte(len(row)>>8), byte(len(row)))
	for _, v := range row {
		if v == nil {
			buf = append(buf, 0xff, 0xff, 0xff, 0xff)
			continue
		}
		l := len(v)
		buf = append(buf, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		buf = append(buf, v...)
	}
	n := len(buf) - start - 1
	buf[start+1], buf[start+2], buf[start+3], buf[start+4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return buf
}

// runOnConns runs one statement per connection: all are written first,
// then every answer is read. Ordered runs them one after another instead
// (DDL: two nodes broadcasting DDL in different orders could deadlock
// across shards, where no server can see it). prefix, if set, is a simple
// query sent ahead of each statement (BEGIN); its answer is read and
// checked before the statement's.
func runOnConns(ctx context.Context, conns []*serverConn, stmts []*shardStatement, prefix string, ordered bool, budget int64) ([]shardAnswer, error) {
	answers := make([]shardAnswer, len(stmts))
	// The shards' rows share one budget: a scatter over a huge table
	// fails with 54000 rather than take the node's memory.
	left := &budget
	for i := range answers {
		answers[i].budget = left
	}
	send := func(i int) error {
		var buf []byte
		if prefix != "" {
			buf = simpleQueryFrame(buf, prefix)
		}
		buf, err := encodeShardStatement(buf, stmts[i])
		if err != nil {
			return err
		}
		if err := conns[i].WriteRaw(buf); err != nil {
			return &serverLostError{err: err}
		}
		if err := conns[i].Flush(); err != nil {
			return &serverLostError{err: err}
		}
		return nil
	}
	recv := func(i int) error {
		answers[i].shard = stmts[i].shard
		if prefix != "" {
			var pre shardAnswer
			if err := readAnswer(conns[i], &pre); err != nil {
				return err
			}
			if pre.err != nil {
				answers[i].err = pre.err
			}
		}
		if err := readAnswer(conns[i], &answers[i]); err != nil {
			return err
		}
		return nil
	}
	if ordered {
		for i := range stmts {
			if err := send(i); err != nil {
				return nil, err
			}
			if err := recv(i); err != nil {
				return nil, err
			}
			if answers[i].err != nil {
				// Later shards are not touched once one refused.
				return answers[:i+1], nil
			}
		}
		return answers, nil
	}
	for i := range stmts {
		if err := send(i); err != nil {
			return nil, err
		}
	}
	for i := range stmts {
		if err := recv(i); err != nil {
			return nil, err
		}
	}
	return answers, nil
}

// exchange writes frames to a connection and reads its answer up to
// ReadyForQuery.
func exchange(sc *serverConn, frames []byte) (shardAnswer, error) {
	var ans shardAnswer
	if err := send(sc, frames); err != nil {
		return ans, err
	}
	err := readAnswer(sc, &ans)
	return ans, err
}

// send writes frames to a server and flushes them; readAnswer reads what
// they get back.
func send(sc *serverConn, frames []byte) error {
	if err := sc.WriteRaw(frames); err != nil {
		return &serverLostError{err: err}
	}
	if err := sc.Flush(); err != nil {
		return &serverLostError{err: err}
	}
	return nil
}

// execSimple runs a simple query of the proxy's own on a connection and
// returns the server's error, if any.
func execSimple(sc *serverConn, sql string) error {
	ans, err := exchange(sc, simpleQueryFrame(nil, sql))
	if err != nil {
		return err
	}
	if ans.err != nil {
		return ans.err
	}
	return nil
}
