package router

// The end of a client's login: the proxy applies the client's startup
// settings on a server connection, reads back what the server made of
// them, and reports the server's parameters to the client as its own.

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

func (s *session) login(ctx context.Context) error {
	for k := range s.settings {
		if strings.Contains(k, ".") {
			s.noteCustomSettings([]string{strings.ToLower(k)})
		}
	}
	if err := s.ensureServer(ctx); err != nil {
		return err
	}
	if err := s.readSettings(ctx); err != nil {
		return err
	}
	s.startup = cloneSettings(s.settings)
	sc := s.server
	for _, k := range sortedKeys(sc.ParameterStatus) {
		if err := s.c.Send(&pgproto3.ParameterStatus{Name: k, Value: sc.ParameterStatus[k]}); err != nil {
			return &clientLostError{err: err}
		}
	}
	var secret [4]byte
	secret[0], secret[1], secret[2], secret[3] = byte(s.secret>>24), byte(s.secret>>16), byte(s.secret>>8), byte(s.secret)
	if err := s.c.Send(&pgproto3.BackendKeyData{ProcessID: s.pid, SecretKey: secret[:]}); err != nil {
		return &clientLostError{err: err}
	}
	if err := s.c.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'}); err != nil {
		return &clientLostError{err: err}
	}
	if s.mode == PoolTransaction {
		s.releaseServer()
	}
	return s.c.Flush()
}
