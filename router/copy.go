package router

// COPY ... FROM STDIN into a sharded or reference table. Every shard gets
// the COPY statement; the client's data is cut into rows (package
// copysplit for text and CSV, a small reader here for binary), each row
// goes to the shard owning its key (every shard for a reference table),
// and the shards' counts are added up. Outside a transaction block the
// COPY runs in a transaction of the proxy's own on each shard and commits
// with two-phase commit, so a failure on one shard leaves no rows
// anywhere.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/shardproxy/shardproxy/copysplit"
	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

// copyFlushBytes is how much COPY data is gathered per shard before it is
// written.
const copyFlushBytes = 64 << 10

// copyTarget is one shard's side of a sharded COPY.
type copyTarget struct {
	id  string
	sc  *serverConn
	buf []byte
}

func (t *copyTarget) add(row []byte) error {
	if len(t.buf) == 0 {
		t.buf = append(t.buf, 'd', 0, 0, 0, 0)
	}
	t.buf = append(t.buf, row...)
	if len(t.buf) >= copyFlushBytes {
		return t.flush()
	}
	return nil
}

func (t *copyTarget) flush() error {
	if len(t.buf) <= 5 {
		return nil
	}
	binary.BigEndian.PutUint32(t.buf[1:], uint32(len(t.buf)-1))
	if err := t.sc.WriteRaw(t.buf); err != nil {
		return &serverLostError{err: err}
	}
	t.buf = t.buf[:0]
	return nil
}

// shardedCopy runs a COPY FROM STDIN planned as CopyIn.
func (s *session) shardedCopy(ctx context.Context, plan *planner.Plan, ci *planner.CopyIn, sql string) error {
	if s.txStatus == 'E' {
		return s.refuseQuery(errAborted())
	}
	m := s.r.Map()
	inBlock := s.txStatus == 'T'
	ownTxn := !inBlock && len(m.Shards) > 1
	targets := make([]*copyTarget, len(m.Shards))
	byID := map[string]*copyTarget{}
	for i, sh := range m.Shards {
		if err := s.useShard(ctx, sh.ID); err != nil {
			return s.refuseQuery(err)
		}
		targets[i] = &copyTarget{id: sh.ID, sc: s.server}
		byID[sh.ID] = targets[i]
	}
	stmt := ci.SQL
	if stmt == "" {
		stmt = sql
	}
	// Start the COPY everywhere; a shard that refuses it (no such table,
	// no privilege) fails the whole statement before any data moves.
	var copyResp []byte
	var failed error
	for _, t := range targets {
		var buf []byte
		if ownTxn {
			buf = simpleQueryFrame(buf, "BEGIN")
		}
		buf = simpleQueryFrame(buf, stmt)
		if err := t.sc.WriteRaw(buf); err != nil {
			s.dropServer()
			return &serverLostError{err: err}
		}
		if err := t.sc.Flush(); err != nil {
			s.dropServer()
			return &serverLostError{err: err}
		}
	}
	started := make([]bool, len(targets))
	for i, t := range targets {
		if ownTxn {
			var ans shardAnswer
			if err := readAnswer(t.sc, &ans); err != nil {
				s.dropServer()
				return err
			}
		}
		resp, err := readCopyStart(t.sc)
		var pe *pgerror.Error
		switch {
		case errors.As(err, &pe):
			if failed == nil {
				failed = pe
			}
		case err != nil:
			s.dropServer()
			return err
		default:
			started[i] = true
			copyResp = resp
		}
	}
	if failed != nil {
		for i, t := range targets {
			if started[i] {
				_ = t.sc.WriteFrame('f', append([]byte("another shard refused the COPY"), 0))
				_ = t.sc.Flush()
				var ans shardAnswer
				_ = readAnswer(t.sc, &ans)
			}
		}
		s.endCopy(targets, ownTxn, inBlock, false)
		return s.refuseQuery(failed)
	}
	if err := s.c.WriteFrame('G', copyResp); err != nil {
		return &clientLostError{err: err}
	}
	if err := s.c.Flush(); err != nil {
		return &clientLostError{err: err}
	}
	clientErr, err := s.pumpCopy(ci, targets, byID)
	if err != nil {
		// The client is gone mid-COPY: its connections are in COPY mode
		// and can serve nobody else.
		s.dropServer()
		return err
	}
	// Every shard ends its COPY; the first error wins.
	var total int64
	for _, t := range targets {
		if clientErr != nil {
			_ = t.sc.WriteFrame('f', append([]byte(clientErr.Error()), 0))
		} else if err := t.flush(); err != nil {
			s.dropServer()
			return err
		} else {
			_ = t.sc.WriteFrame('c', nil)
		}
		if err := t.sc.Flush(); err != nil {
			s.dropServer()
			return &serverLostError{err: err}
		}
	}
	for _, t := range targets {
		var ans shardAnswer
		if err := readAnswer(t.sc, &ans); err != nil {
			s.dropServer()
			return err
		}
		if ans.err != nil && failed == nil {
			failed = ans.err
		}
		var n int64
		if _, err := fmt.Sscanf(ans.tag, "COPY %d", &n); err == nil {
			if ci.Broadcast {
				total = n
			} else {
				total += n
			}
		}
	}
	if clientErr != nil && failed == nil {
		failed = clientErr
	}
	if failed != nil {
		s.endCopy(targets, ownTxn, inBlock, false)
		if inBlock {
			s.txStatus = 'E'
			s.distributedFailed = true
		}
		return s.refuseQuery(failed)
	}
	if ownTxn {
		conns := make([]*serverConn, len(targets))
		ids := make([]string, len(targets))
		for i, t := range targets {
			conns[i], ids[i] = t.sc, t.id
		}
		if err := s.twoPhaseCommit(ctx, conns, ids); err != nil {
			s.releaseServer()
			return s.refuseQuery(err)
		}
	}
	s.endCopy(targets, ownTxn, inBlock, true)
	if err := s.c.WriteFrame('C', append([]byte(fmt.Sprintf("COPY %d", total)), 0)); err != nil {
		return &clientLostError{err: err}
	}
	return s.readyWithoutServer()
}

// endCopy gives the connections back (or keeps them in the client's
// transaction, noting the writes).
func (s *session) endCopy(targets []*copyTarget, ownTxn, inBlock, ok bool) {
	if inBlock {
		if ok {
			if s.wrote == nil {
				s.wrote = map[string]bool{}
			}
			for _, t := range targets {
				s.wrote[t.id] = true
			}
		}
		return
	}
	if ownTxn && !ok {
		for _, t := range targets {
			_ = execSimple(t.sc, "ROLLBACK")
		}
	}
	s.releaseServer()
}

// readCopyStart reads a server's answer to a COPY statement up to its
// CopyInResponse, or its error and ReadyForQuery.
func readCopyStart(sc *serverConn) ([]byte, error) {
	for {
		typ, body, err := sc.ReadMessage()
		if err != nil {
			return nil, &serverLostError{err: err}
		}
		switch typ {
		case 'G':
			return bytes.Clone(body), nil
		case 'N', 'S':
		case 'E':
			var er pgproto3.ErrorResponse
			_ = er.Decode(body)
			var ans shardAnswer
			if err := readAnswer(sc, &ans); err != nil {
				return nil, err
			}
			return nil, errorFromResponse(&er)
		default:
			return nil, fmt.Errorf("server %s answered COPY with message type %q", sc.Addr, typ)
		}
	}
}

// pumpCopy reads the client's COPY data until CopyDone or CopyFail and
// sends each row to its shard. clientErr is the error the COPY must fail
// with (the client's CopyFail, or bad data); err means the session is
// over.
func (s *session) pumpCopy(ci *planner.CopyIn, targets []*copyTarget, byID map[string]*copyTarget) (clientErr, err error) {
	m := s.r.Map()
	route := func(key []byte, null bool, row []byte) error {
		if ci.Broadcast {
			for _, t := range targets {
				if err := t.add(row); err != nil {
					return err
				}
			}
			return nil
		}
		owner := targets[0]
		if !null {
			id, err := textKeyID(string(key), ci.KeyType, true)
			if err != nil {
				return err
			}
			owner = byID[m.Owner(id)]
		}
		return owner.add(row)
	}
	var split func(chunk []byte) error
	var end func() error
	if ci.Format == "binary" {
		br := &binaryCopyReader{keyField: ci.KeyColumn}
		split = func(chunk []byte) error {
			return br.feed(chunk, func(row []byte, key []byte, null, header bool) error {
				if header {
					for _, t := range targets {
						if err := t.add(row); err != nil {
							return err
						}
					}
					return nil
				}
				if ci.Broadcast || null {
					return route(nil, true, row)
				}
				id, err := binaryKeyID(key, ci.KeyType)
				if err != nil {
					return err
				}
				return byID[m.Owner(id)].add(row)
			})
		}
		end = br.end
	} else {
		opts := copysplit.Options{CSV: ci.Format == "csv", KeyField: max(ci.KeyColumn, 0), KeyName: ci.Key,
			Header: ci.Header, Encoding: ci.Encoding}
		if ci.Delimiter != "" {
			opts.Delimiter = ci.Delimiter[0]
		}
		if ci.Null != "" {
			opts.Null, opts.NullSet = ci.Null, true
		}
		if ci.Quote != "" {
			opts.Quote = ci.Quote[0]
		}
		if ci.Escape != "" {
			opts.Escape = ci.Escape[0]
		}
		sp, err := copysplit.New(opts)
		if err != nil {
			return err, nil
		}
		emit := func(r copysplit.Row) error {
			if r.Header {
				for _, t := range targets {
					if err := t.add(r.Data); err != nil {
						return err
					}
				}
				return nil
			}
			return route(r.Key, r.Null, r.Data)
		}
		split = func(chunk []byte) error { return sp.Feed(chunk, emit) }
		end = func() error { return sp.End(emit) }
	}
	var failed error
	for {
		typ, body, err := s.c.ReadMessage()
		if err != nil {
			return nil, &clientLostError{err: err}
		}
		switch typ {
		case 'd':
			if failed == nil {
				if err := split(body); err != nil {
					var sl *serverLostError
					if errors.As(err, &sl) {
						return nil, err
					}
					failed = err
				}
			}
		case 'c':
			if failed == nil {
				if err := end(); err != nil {
					failed = err
				}
			}
			return failed, nil
		case 'f':
			return pgerror.New(pgerror.QueryCanceled, "COPY from stdin failed: %s", trimNul(body)), nil
		case 'H', 'S':
			// PostgreSQL ignores Flush and Sync during COPY.
		default:
			return nil, pgerror.Fatal(pgerror.ProtocolViolation, "unexpected message type 0x%02X during COPY from stdin", typ)
		}
	}
}

// binaryKeyID hashes a key in PostgreSQL's binary form of its type.
func binaryKeyID(key []byte, keyType string) (keyspace.ID, error) {
	switch keyType {
	case "int8", "int4", "int2":
		var n int64
		switch len(key) {
		case 8:
			n = int64(binary.BigEndian.Uint64(key))
		case 4:
			n = int64(int32(binary.BigEndian.Uint32(key)))
		case 2:
			n = int64(int16(binary.BigEndian.Uint16(key)))
		default:
			return 0, pgerror.New(pgerror.BadCopyFileFormat, "incorrect binary data format")
		}
		return keyspace.Int(n), nil
	case "uuid":
		if len(key) != 16 {
			return 0, pgerror.New(pgerror.BadCopyFileFormat, "incorrect binary data format")
		}
		return keyspace.UUID([16]byte(key)), nil
	}
	return textKeyID(string(key), keyType, true)
}

// binaryCopyReader cuts COPY BINARY data into its header and tuples.
type binaryCopyReader struct {
	keyField  int
	pending   []byte
	sawHeader bool
	done      bool
}

var binaryCopySignature = []byte("PGCOPY\n\xff\r\n\x00")

func (b *binaryCopyReader) feed(chunk []byte, emit func(row, key []byte, null, header bool) error) error {
	if b.done {
		return nil
	}
	data := chunk
	if len(b.pending) > 0 {
		b.pending = append(b.pending, chunk...)
		data = b.pending
	}
	off := 0
	bad := func() error {
		return pgerror.New(pgerror.BadCopyFileFormat, "invalid COPY file header or tuple")
	}
	for {
		rest := data[off:]
		if !b.sawHeader {
			if len(rest) < 19 {
				break
			}
			if !bytes.Equal(rest[:11], binaryCopySignature) {
				return pgerror.New(pgerror.BadCopyFileFormat, "COPY file signature not recognized")
			}
			ext := int(binary.BigEndian.Uint32(rest[15:19]))
			if len(rest) < 19+ext {
				break
			}
			if err := emit(rest[:19+ext], nil, false, true); err != nil {
				return err
			}
			off += 19 + ext
			b.sawHeader = true
			continue
		}
		if len(rest) < 2 {
			break
		}
		nf := int(int16(binary.BigEndian.Uint16(rest)))
		if nf == -1 {
			b.done = true
			break
		}
		if b.keyField >= nf {
			return bad()
		}
		p := 2
		var key []byte
		null := true
		complete := true
		for f := 0; f < nf; f++ {
			if len(rest) < p+4 {
				complete = false
				break
			}
			l := int(int32(binary.BigEndian.Uint32(rest[p:])))
			p += 4
			if l < 0 {
				continue
			}
			if len(rest) < p+l {
				complete = false
				break
			}
			if f == b.keyField {
				key, null = rest[p:p+l], false
			}
			p += l
		}
		if !complete {
			break
		}
		if err := emit(rest[:p], key, null, false); err != nil {
			return err
		}
		off += p
	}
	left := data[off:]
	if len(left) == 0 {
		b.pending = b.pending[:0]
	} else {
		b.pending = append(b.pending[:0:0], left...)
	}
	return nil
}

func (b *binaryCopyReader) end() error {
	if len(b.pending) > 0 && !b.done {
		return pgerror.New(pgerror.BadCopyFileFormat, "unexpected EOF in COPY data")
	}
	return nil
}

// shardedCopyOut runs COPY ... TO STDOUT on each shard in map order and
// sends the client one stream: one CopyOutResponse, every shard's rows,
// one header (CSV and text HEADER; the binary file header and trailer),
// one CopyDone and the total count. Nothing of a later shard is sent
// before an earlier one has finished, and a failing shard ends the COPY
// with its error.
func (s *session) shardedCopyOut(ctx context.Context, co *planner.CopyOut, route *planner.Route, shards []string, sql string) error {
	err := s.copyOutShards(ctx, co, route, shards, sql)
	var cl *clientLostError
	if errors.As(err, &cl) {
		// A shard may still be sending rows: its connection serves
		// nobody else.
		s.dropServer()
	}
	return err
}

func (s *session) copyOutShards(ctx context.Context, co *planner.CopyOut, route *planner.Route, shards []string, sql string) error {
	if s.txStatus == 'E' {
		return s.refuseQuery(errAborted())
	}
	stmt := route.SQL
	if stmt == "" {
		stmt = sql
	}
	inBlock := s.txStatus == 'T'
	binaryFormat := co.Format == "binary"
	var total int64
	started := false
	for i, id := range shards {
		if err := s.useShard(ctx, id); err != nil {
			if started {
				return s.failCopyOut(err, inBlock)
			}
			return s.refuseQuery(err)
		}
		sc := s.server
		if err := sc.WriteRaw(simpleQueryFrame(nil, stmt)); err != nil {
			s.dropServer()
			return &serverLostError{err: err}
		}
		if err := sc.Flush(); err != nil {
			s.dropServer()
			return &serverLostError{err: err}
		}
		first, last := i == 0, i == len(shards)-1
		var held []byte
		dataSeen := false
		var shardErr error
		for {
			typ, body, err := sc.ReadMessage()
			if err != nil {
				s.dropServer()
				return &serverLostError{err: err}
			}
			if typ == 'Z' {
				break
			}
			switch typ {
			case 'H':
				if !started {
					if err := s.c.WriteFrame('H', body); err != nil {
						return &clientLostError{err: err}
					}
					started = true
				}
			case 'd':
				data := body
				if !dataSeen && !first {
					dataSeen = true
					switch {
					case binaryFormat && len(data) >= 19:
						data = data[19+int(binary.BigEndian.Uint32(data[15:19])):]
					case co.Header:
						data = nil
					}
				}
				dataSeen = true
				if held != nil {
					if err := s.c.WriteFrame('d', held); err != nil {
						return &clientLostError{err: err}
					}
				}
				held = append(held[:0:0], data...)
			case 'c':
			case 'C':
				var n int64
				if _, err := fmt.Sscanf(string(trimNul(body)), "COPY %d", &n); err == nil {
					total += n
				}
			case 'E':
				var er pgproto3.ErrorResponse
				_ = er.Decode(body)
				shardErr = errorFromResponse(&er)
			case 'N':
				if first {
					if err := s.c.WriteFrame('N', body); err != nil {
						return &clientLostError{err: err}
					}
				}
			}
		}
		// A binary stream's trailer (-1 as int16) ends the last shard's
		// rows only.
		if held != nil && !(binaryFormat && !last && len(held) == 2 && held[0] == 0xff && held[1] == 0xff) && len(held) > 0 {
			if err := s.c.WriteFrame('d', held); err != nil {
				return &clientLostError{err: err}
			}
		}
		if shardErr != nil {
			if !started {
				if !inBlock {
					s.releaseServer()
				} else {
					s.txStatus, s.distributedFailed = 'E', true
				}
				return s.refuseQuery(shardErr)
			}
			return s.failCopyOut(shardErr, inBlock)
		}
	}
	if !inBlock {
		s.releaseServer()
	}
	if err := s.c.WriteFrame('c', nil); err != nil {
		return &clientLostError{err: err}
	}
	if err := s.c.WriteFrame('C', append([]byte(fmt.Sprintf("COPY %d", total)), 0)); err != nil {
		return &clientLostError{err: err}
	}
	return s.readyWithoutServer()
}

// failCopyOut ends a COPY TO STDOUT the client has started receiving.
func (s *session) failCopyOut(err error, inBlock bool) error {
	if inBlock {
		s.txStatus, s.distributedFailed = 'E', true
	} else {
		s.releaseServer()
	}
	if err := s.c.SendError(pgerror.From(err)); err != nil {
		return &clientLostError{err: err}
	}
	return s.readyWithoutServer()
}
