//go:build !unix

package wire

// Without the unix RawConn read (idle_unix.go) every idle connection waits
// reading one byte (Conn.waitIdleByte).

func (c *Conn) initIdleWait() {}
