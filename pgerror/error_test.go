package pgerror_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shardproxy/shardproxy/pgerror"
)

func TestFrom(t *testing.T) {
	base := pgerror.New(pgerror.TooManyConnections, "too many clients").WithHint("raise limits.max_client_connections")
	cases := []struct {
		name     string
		err      error
		wantCode pgerror.Code
		wantHint string
	}{
		{"direct", base, pgerror.TooManyConnections, "raise limits.max_client_connections"},
		{"wrapped", fmt.Errorf("accept: %w", base), pgerror.TooManyConnections, "raise limits.max_client_connections"},
		{"plain error becomes internal", errors.New("boom"), pgerror.InternalError, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := pgerror.From(tc.err)
			if got.Code != tc.wantCode || got.Hint != tc.wantHint {
				t.Fatalf("From(%v) = code %s hint %q, want %s %q", tc.err, got.Code, got.Hint, tc.wantCode, tc.wantHint)
			}
			if got.SQLState() != string(tc.wantCode) {
				t.Fatalf("SQLState() = %s", got.SQLState())
			}
		})
	}
}

func TestClass(t *testing.T) {
	for code, class := range map[pgerror.Code]string{pgerror.ProtocolViolation: "08", pgerror.PoolTimeout: "57", "": ""} {
		if got := code.Class(); got != class {
			t.Errorf("%q.Class() = %q, want %q", code, got, class)
		}
	}
}
