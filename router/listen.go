package router

// A client that ran LISTEN in session pooling may sit idle waiting for
// notifications (pgx's WaitForNotification does). While it is idle its
// server connection is watched by a second goroutine that forwards
// notifications at once; the watcher exists only for such clients, so
// ordinary sessions pay nothing for it.

import (
	"errors"
	"os"
	"time"
)

func (s *session) readClientWatchingServer() (byte, []byte, error) {
	sc := s.server
	done := make(chan error, 1)
	go func() { done <- s.watchServer() }()
	typ, body, err := s.c.ReadMessage()
	s.c.EndIdle()
	// Stop the watcher: its blocked read fails at once and, reading with
	// Peek, loses no byte of a message that was arriving.
	_ = sc.SetDeadline(time.Now())
	werr := <-done
	_ = sc.SetDeadline(time.Time{})
	if werr != nil && !errors.Is(werr, os.ErrDeadlineExceeded) {
		return 0, nil, &serverLostError{err: werr}
	}
	return typ, body, err
}

func (s *session) watchServer() error {
	sc := s.server
	for {
		typ, body, err := sc.ReadMessageKeepOnError()
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				// The server went away: wake the client read too.
				_ = s.c.SetReadDeadline(time.Now())
			}
			return err
		}
		switch typ {
		case 'A', 'N', 'S':
		case 'E':
			// The server is ending the session (terminated, shut down):
			// the client hears why at once, and its read is interrupted.
			_ = s.c.WriteFrame(typ, body)
			_ = s.c.Flush()
			s.serverSentFatal = true
			_ = s.c.SetReadDeadline(time.Now())
			return errors.New("the server ended the session while the client was idle")
		default:
			_ = s.c.SetReadDeadline(time.Now())
			return errors.New("server sent an unexpected message while the client was idle")
		}
		if err := s.c.WriteFrame(typ, body); err != nil {
			return err
		}
		if err := s.c.Flush(); err != nil {
			return err
		}
	}
}
