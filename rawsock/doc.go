// Package rawsock gives the proxy's TCP connections reads and writes that
// do not go through the Go scheduler's system call path.
//
// A net.TCPConn's Read and Write enter the kernel through syscall.Syscall,
// which marks the goroutine's P as "in a system call". On a busy machine
// with few cores, a write on loopback TCP often takes longer than the
// runtime's 20 µs sysmon tick: the kernel delivers the segment to the
// receiver and wakes it within the writer's call, and the woken process
// (PostgreSQL, the client) frequently preempts the writer on the same
// core. sysmon then retakes the P and hands it to another thread, and
// keeps itself waking every 20 µs because it keeps finding work. Profiles
// of the proxy under pgbench showed sysmon alone at about a sixth of the
// proxy's CPU.
//
// The sockets are non-blocking, so no read or write here can block in the
// kernel: they are made with syscall.RawSyscall inside
// syscall.RawConn.Read/Write callbacks, and "would block" goes back to the
// runtime's network poller exactly as the standard library does it.
// Deadlines, Close and the poller's wake-ups behave as for the wrapped
// connection.
package rawsock
