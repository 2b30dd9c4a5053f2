// Short constructors for frontend messages, so the case table reads like the
// protocol conversation it describes.
package protocol_test

import (
	"encoding/binary"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Type OIDs used in Parse messages.
const (
	oidInt4 = 23
	oidText = 25
)

func query(sql string) *pgproto3.Query { return &pgproto3.Query{String: sql} }

func parse(name, sql string, oids ...uint32) *pgproto3.Parse {
	return &pgproto3.Parse{Name: name, Query: sql, ParameterOIDs: oids}
}

// bind binds text parameters; a nil value is NULL.
func bind(portal, stmt string, params ...[]byte) *pgproto3.Bind {
	return &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt, Parameters: params}
}

func txt(s string) []byte { return []byte(s) }

func int4Binary(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

func execute(portal string, maxRows uint32) *pgproto3.Execute {
	return &pgproto3.Execute{Portal: portal, MaxRows: maxRows}
}

func describeStmt(name string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: 'S', Name: name}
}

func describePortal(name string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: 'P', Name: name}
}

func closeStmt(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'S', Name: name} }

func closePortal(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'P', Name: name} }

func copyData(s string) *pgproto3.CopyData { return &pgproto3.CopyData{Data: []byte(s)} }

func copyFail(msg string) *pgproto3.CopyFail { return &pgproto3.CopyFail{Message: msg} }

var (
	syncMsg  = &pgproto3.Sync{}
	flushMsg = &pgproto3.Flush{}
	copyDone = &pgproto3.CopyDone{}
)

// batch is a step that ends in its n-th ReadyForQuery.
func batch(rfq int, m ...pgproto3.FrontendMessage) step { return step{Send: m, RFQ: rfq} }

// upTo is a step that has no ReadyForQuery to wait for (it ends in Flush or
// opens a COPY): it reads exactly n messages.
func upTo(n int, m ...pgproto3.FrontendMessage) step { return step{Send: m, Msgs: n} }

// sync1 is the common step: messages, Sync, one ReadyForQuery.
func sync1(m ...pgproto3.FrontendMessage) step { return batch(1, append(m, syncMsg)...) }

// simple is a step of one simple Query.
func simple(sql string) step { return batch(1, query(sql)) }
