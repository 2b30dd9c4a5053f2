package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/shardproxy/shardproxy/pgerror"
)

func frame(typ byte, body []byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

func TestReadFrame(t *testing.T) {
	cases := []struct {
		name     string
		in       []byte
		max      int
		wantTyp  byte
		wantBody string
		wantCode pgerror.Code
		wantErr  bool
	}{
		{"query", frame('Q', []byte("select 1\x00")), 100, 'Q', "select 1\x00", "", false},
		{"empty body", frame('S', nil), 100, 'S', "", "", false},
		{"too large", frame('Q', make([]byte, 200)), 100, 0, "", pgerror.ProtocolViolation, true},
		{"negative length", []byte{'Q', 0xff, 0xff, 0xff, 0xff}, 100, 0, "", pgerror.ProtocolViolation, true},
		{"length below 4", []byte{'Q', 0, 0, 0, 3}, 100, 0, "", pgerror.ProtocolViolation, true},
		{"truncated", frame('Q', []byte("select"))[:7], 100, 0, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h [5]byte
			var buf []byte
			typ, body, err := readFrame(bytes.NewReader(tc.in), &h, &buf, tc.max)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantCode != "" {
				var pe *pgerror.Error
				if !errors.As(err, &pe) || pe.Code != tc.wantCode {
					t.Fatalf("err = %v, want SQLSTATE %s", err, tc.wantCode)
				}
			}
			if err == nil && (typ != tc.wantTyp || string(body) != tc.wantBody) {
				t.Fatalf("got %q %q, want %q %q", typ, body, tc.wantTyp, tc.wantBody)
			}
		})
	}
}

func TestParseStartupParams(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"user and db", "user\x00app\x00database\x00db\x00\x00", map[string]string{"user": "app", "database": "db"}, false},
		{"no params", "\x00", map[string]string{}, false},
		{"unterminated", "user\x00app", nil, true},
		{"no value", "user\x00", nil, true},
		{"trailing bytes", "user\x00app\x00\x00x", nil, true},
		{"empty", "", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStartupParams([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// FuzzReadFrame feeds arbitrary client bytes to the frame reader: it must
// return frames or errors, never panic or allocate beyond the limit.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame('Q', []byte("select 1\x00")))
	f.Add(frame('P', []byte("\x00select $1\x00\x00\x01\x00\x00\x00\x17")))
	f.Add([]byte{'X', 0, 0, 0, 4})
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var h [5]byte
		var buf []byte
		for {
			_, body, err := readFrame(r, &h, &buf, 1<<16)
			if err != nil {
				return
			}
			if len(body) > 1<<16 {
				t.Fatalf("body of %d bytes beyond the limit", len(body))
			}
		}
	})
}

// FuzzStartupPacket feeds arbitrary bytes to the startup packet decoder.
func FuzzStartupPacket(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x17\x00\x03\x00\x00user\x00app\x00\x00"))
	f.Add([]byte("\x00\x00\x00\x08\x04\xd2\x16\x2f"))
	f.Add([]byte("\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01\x00\x00\x00\x02"))
	f.Fuzz(func(t *testing.T, in []byte) {
		code, body, err := readStartupPacket(bytes.NewReader(in))
		if err != nil {
			return
		}
		if code>>16 == 3 {
			_, _ = parseStartupParams(body)
		}
	})
}
