package router

// serverConn is a pooled server connection plus what the router knows about
// its session state: which prepared statements exist on it (protocol-level,
// under names derived from their text, and SQL-level, under the client's
// names) and which settings the proxy applied to it.

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/backend"
)

type serverConn struct {
	*backend.Conn
	pool     *pool
	lastUsed time.Time

	// prepared holds server statement names, most recently used first; the
	// list is bounded so a client generating endless distinct statements
	// cannot grow a server's memory without limit.
	prepared    map[string]*list.Element
	preparedLRU *list.List
	// sqlPrepared maps SQL-level PREPARE names to their full PREPARE text.
	sqlPrepared map[string]string
	// settings are the session settings (pg_settings source 'session')
	// the connection has, as the proxy last applied or read them
	// (setSettings); customSettings: one of them is a custom (dotted)
	// setting, which checkout must look for.
	settings       map[string]string
	customSettings bool
	// toClose lists evicted statements still to be closed on the server.
	toClose []string
	// dirty: the connection holds session state no other client may
	// inherit; it is closed instead of pooled.
	dirty bool
	// txStatus is the server's transaction status as of its last
	// ReadyForQuery: a connection not idle ('I') is never pooled.
	txStatus byte
	// beginAhead: a deferred block's BEGIN went out ahead of its first
	// statement and its answer is still to be read (deferbegin.go).
	beginAhead bool
	// interrupted: an exchange was cut short by its context (a phase of
	// a distributed commit past its deadline). An answer may still
	// arrive, so nothing more is sent on it and it is closed, not pooled.
	interrupted bool
}

// setSettings records the connection's session settings.
func (sc *serverConn) setSettings(m map[string]string) {
	sc.settings, sc.customSettings = m, false
	for k := range m {
		if strings.Contains(k, ".") {
			sc.customSettings = true
			break
		}
	}
}

func newServerConn(bc *backend.Conn, p *pool) *serverConn {
	return &serverConn{
		Conn: bc, pool: p, lastUsed: time.Now(),
		prepared: map[string]*list.Element{}, preparedLRU: list.New(),
		sqlPrepared: map[string]string{}, settings: map[string]string{},
	}
}

// preparedEntry is a statement on the server and the schema epoch it was
// prepared in.
type preparedEntry struct {
	name  string
	epoch uint64
	// desc is the statement's result description (see describeResult),
	// nil until the server has answered the proxy's Describe; paramDesc
	// is the ParameterDescription body of the same answer.
	desc, paramDesc []byte
}

// preparedDesc returns the descriptions of a server statement.
func (sc *serverConn) preparedDesc(name string) (desc, paramDesc []byte) {
	if e, ok := sc.prepared[name]; ok {
		pe := e.Value.(preparedEntry)
		return pe.desc, pe.paramDesc
	}
	return nil, nil
}

// setPreparedDesc records a server statement's descriptions.
func (sc *serverConn) setPreparedDesc(name string, desc, paramDesc []byte) {
	if e, ok := sc.prepared[name]; ok {
		pe := e.Value.(preparedEntry)
		pe.desc, pe.paramDesc = desc, paramDesc
		e.Value = pe
	}
}

// lookupPrepared reports whether the server holds the statement, and
// whether it was prepared before a schema change the proxy saw (so it must
// be closed and prepared again rather than trusted).
func (sc *serverConn) lookupPrepared(name string, epoch uint64) (present, stale bool) {
	e, ok := sc.prepared[name]
	if !ok {
		return false, false
	}
	if e.Value.(preparedEntry).epoch < epoch {
		return true, true
	}
	sc.preparedLRU.MoveToFront(e)
	return true, false
}

// addPrepared records a statement. Beyond the bound the least recently
// used one is forgotten and queued for closing on the server at the start
// of the next batch.
func (sc *serverConn) addPrepared(name string, epoch uint64) {
	if e, ok := sc.prepared[name]; ok {
		pe := e.Value.(preparedEntry)
		if pe.epoch != epoch {
			pe.epoch, pe.desc, pe.paramDesc = epoch, nil, nil
		}
		e.Value = pe
		return
	}
	sc.prepared[name] = sc.preparedLRU.PushFront(preparedEntry{name: name, epoch: epoch})
	if sc.preparedLRU.Len() > sc.pool.maxPrep {
		back := sc.preparedLRU.Back()
		evict := back.Value.(preparedEntry).name
		sc.preparedLRU.Remove(back)
		delete(sc.prepared, evict)
		sc.toClose = append(sc.toClose, evict)
	}
}

func (sc *serverConn) forgetPrepared(name string) {
	if e, ok := sc.prepared[name]; ok {
		sc.preparedLRU.Remove(e)
		delete(sc.prepared, name)
	}
}

// resetState forgets everything after DISCARD ALL or DEALLOCATE ALL ran on
// the server.
func (sc *serverConn) resetState(settingsToo bool) {
	clear(sc.prepared)
	sc.preparedLRU.Init()
	clear(sc.sqlPrepared)
	sc.toClose = sc.toClose[:0]
	if settingsToo {
		clear(sc.settings)
	}
}

// serverStatementName derives the server-side name of a protocol-level
// statement from its text and parameter types: equal statements of
// different clients share one server statement, and a client's own name
// never reaches the server (so two clients' "s1" never collide).
func serverStatementName(query string, paramOIDs []uint32, extra ...string) string {
	h := sha256.New()
	h.Write([]byte(query))
	for _, e := range extra {
		h.Write([]byte{0})
		h.Write([]byte(e))
	}
	var b [4]byte
	for _, oid := range paramOIDs {
		binary.BigEndian.PutUint32(b[:], oid)
		h.Write(b[:])
	}
	sum := h.Sum(nil)
	return "shardproxy_" + hex.EncodeToString(sum[:12])
}
