package testcert_test

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/shardproxy/shardproxy/testcert"
)

// A client that verifies against Roots completes a handshake with a
// server using the files WriteFiles wrote, by IP and by name.
func TestVerifiedHandshake(t *testing.T) {
	c, err := testcert.New("testcert")
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath, err := c.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		t.Run(name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			server := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{pair}})
			client := tls.Client(b, &tls.Config{RootCAs: c.Roots, ServerName: name})
			done := make(chan error, 1)
			go func() { done <- server.Handshake() }()
			if err := client.Handshake(); err != nil {
				t.Fatalf("client: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("server: %v", err)
			}
		})
	}
}
