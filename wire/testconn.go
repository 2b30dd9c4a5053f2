package wire

// Tests of handlers (the router, the admin console) need a logged-in Conn
// without running a Server and an authentication exchange: this wraps a
// connection, such as one end of net.Pipe, as if login had just finished.

import "net"

// testMaxMessageSize is the frame limit of a test connection: large enough
// for any test, small enough that a broken length is still caught.
const testMaxMessageSize = 16 << 20

// NewConnForTest returns nc as an authenticated client connection of user
// to database, with no startup parameters and Admin unset (tests set it).
// Nothing has been written to nc: the handler's first output is what the
// client reads first.
func NewConnForTest(nc net.Conn, user, database string) *Conn {
	c := newConn(nc, inbuf{src: nc}, testMaxMessageSize)
	c.User, c.Database = user, database
	c.Params = map[string]string{}
	return c
}
