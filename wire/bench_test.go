// Frame forwarding over loopback TCP: what a session does per message,
// without a router. Both paths must allocate nothing: "busy" reads
// pipelined messages that are already buffered, "idle" waits for each
// message the way a session between transactions does, giving its buffers
// back and taking them again every time.

package wire_test

import (
	"io"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/wire"
)

func BenchmarkForward(b *testing.B) {
	query := frame('Q', "select abalance from pgbench_accounts where aid = 42\x00")
	ready := frame('Z', "I")
	answerLen := len(query) + len(ready)

	b.Run("busy", func(b *testing.B) {
		client, c := tcpPair(b)
		_ = client.SetDeadline(time.Time{})
		// The client writes batches of queries and reads the answers
		// behind them.
		const batch = 64
		var msgs []byte
		for range batch {
			msgs = append(msgs, query...)
		}
		n := b.N
		go func() {
			for sent := 0; sent < n; sent += batch {
				if _, err := client.Write(msgs); err != nil {
					return
				}
			}
		}()
		done := make(chan error, 1)
		go func() {
			buf := make([]byte, 64<<10)
			var err error
			for left := n * answerLen; left > 0 && err == nil; {
				var k int
				k, err = client.Read(buf[:min(left, len(buf))])
				left -= k
			}
			done <- err
		}()
		b.SetBytes(int64(len(query)))
		b.ReportAllocs()
		b.ResetTimer()
		for range n {
			if err := forward(c, ready, false); err != nil {
				b.Fatal(err)
			}
		}
		// The last batch may go beyond n: its answers are not flushed.
		if err := c.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})

	b.Run("idle", func(b *testing.B) {
		client, c := tcpPair(b)
		_ = client.SetDeadline(time.Time{})
		n := b.N
		done := make(chan error, 1)
		go func() {
			answer := make([]byte, answerLen)
			for range n {
				if _, err := client.Write(query); err != nil {
					done <- err
					return
				}
				if _, err := io.ReadFull(client, answer); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		b.SetBytes(int64(len(query)))
		b.ReportAllocs()
		b.ResetTimer()
		for range n {
			if err := forward(c, ready, true); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
}

// forward reads one message and sends it back with a ReadyForQuery,
// flushing when no more input is buffered, as the router does.
func forward(c *wire.Conn, ready []byte, idle bool) error {
	if idle && !c.BeginIdle() {
		return io.ErrClosedPipe
	}
	typ, body, err := c.ReadMessage()
	if idle {
		c.EndIdle()
	}
	if err != nil {
		return err
	}
	if err := c.WriteFrame(typ, body); err != nil {
		return err
	}
	if err := c.WriteRaw(ready); err != nil {
		return err
	}
	if c.Buffered() > 0 {
		return nil
	}
	return c.Flush()
}
