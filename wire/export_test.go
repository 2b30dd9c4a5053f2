package wire

// IdleState is what a test sees of a connection waiting idle.
type IdleState struct {
	ReadBuffer  bool // the read buffer is held
	WriteBuffer bool // the write buffer is held
	BodyCap     int  // capacity of the kept message body buffer
}

// OnIdleWait makes c report its state each time an idle read is about to
// wait without a read buffer. It runs on the reading goroutine.
func OnIdleWait(c *Conn, f func(IdleState)) {
	c.onWait = func() {
		f(IdleState{ReadBuffer: c.in.buf != nil, WriteBuffer: c.w != nil, BodyCap: cap(c.body)})
	}
}
