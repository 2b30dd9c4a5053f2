// Package loopback finds free TCP ports on 127.0.0.1 for processes about
// to be started on them, and possibly restarted on the same port later:
// the local PostgreSQL servers of the demo and the test harness, and the
// proxies and Raft nodes the tests run.
//
// A port from listening on port 0 lies in the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), from which every outgoing connection
// also takes its source port. Between the moment such a port is found free
// and the moment the process binds it, or while the process is down for a
// restart, a connection anywhere on the machine may take it, and the start
// fails with "address already in use" (a Raft node of TestClusterLifecycle
// did, in CI). So the ports come from below that range, where only
// explicit binds go.
package loopback
