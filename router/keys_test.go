package router

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/pgerror"
	"github.com/shardproxy/shardproxy/planner"
)

func TestTextKeyID(t *testing.T) {
	cases := []struct {
		name, in, keyType string
		quoted            bool
		want              keyspace.ID
		code              pgerror.Code
		noKey             bool
	}{
		{name: "int8", in: "42", keyType: "int8", want: keyspace.Int(42)},
		{name: "int4 quoted with spaces", in: " -7 ", keyType: "int4", quoted: true, want: keyspace.Int(-7)},
		{name: "bad int", in: "abc", keyType: "int8", quoted: true, code: pgerror.InvalidTextRepresentation},
		{name: "int4 out of range", in: "3000000000", keyType: "int4", quoted: true, code: pgerror.NumericValueOutOfRange},
		{name: "int8 out of range", in: "99999999999999999999", keyType: "int8", quoted: true, code: pgerror.NumericValueOutOfRange},
		{name: "unquoted fraction matches nothing", in: "4.2", keyType: "int8", noKey: true},
		{name: "unquoted integral numeric", in: "4.0", keyType: "int8", want: keyspace.Int(4)},
		{name: "text", in: "héllo", keyType: "text", want: keyspace.Text("héllo")},
		{name: "bpchar trailing spaces", in: "ab  ", keyType: "bpchar", want: keyspace.Text("ab")},
		{name: "uuid braces", in: "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", keyType: "uuid",
			want: keyspace.UUID([16]byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11})},
		{name: "bad uuid", in: "a0ee-", keyType: "uuid", quoted: true, code: pgerror.InvalidTextRepresentation},
		{name: "unsupported type", in: "1", keyType: "numeric", code: pgerror.FeatureNotSupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := textKeyID(c.in, c.keyType, c.quoted)
			switch {
			case c.noKey:
				if err != errNoKey {
					t.Fatalf("got %v, %v; want no key", got, err)
				}
			case c.code != "":
				pe, ok := err.(*pgerror.Error)
				if !ok || pe.Code != c.code {
					t.Fatalf("got %v, %v; want code %s", got, err, c.code)
				}
			case err != nil || got != c.want:
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestKeyIDsParams(t *testing.T) {
	bin8 := binary.BigEndian.AppendUint64(nil, uint64(12345))
	arr := []byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 1}
	arr = binary.BigEndian.AppendUint32(arr, 8)
	arr = binary.BigEndian.AppendUint64(arr, 5)
	arr = append(arr, 0xff, 0xff, 0xff, 0xff) // NULL element
	cases := []struct {
		name string
		v    planner.KeyValue
		p    boundParams
		want []keyspace.ID
	}{
		{"text param", planner.KeyValue{Param: 1}, boundParams{values: [][]byte{[]byte("7")}}, []keyspace.ID{keyspace.Int(7)}},
		{"binary int8 param", planner.KeyValue{Param: 1}, boundParams{formats: []int16{1}, values: [][]byte{bin8}, oids: []uint32{20}}, []keyspace.ID{keyspace.Int(12345)}},
		{"null param", planner.KeyValue{Param: 1}, boundParams{values: [][]byte{nil}}, nil},
		{"text array", planner.KeyValue{Param: 1, ArrayParam: true}, boundParams{values: [][]byte{[]byte(`{1, 2,NULL}`)}}, []keyspace.ID{keyspace.Int(1), keyspace.Int(2)}},
		{"binary array", planner.KeyValue{Param: 1, ArrayParam: true}, boundParams{formats: []int16{1}, values: [][]byte{arr}}, []keyspace.ID{keyspace.Int(5)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := keyIDs(c.v, "int8", nil, "", &c.p)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestBinaryCopyReader(t *testing.T) {
	var data []byte
	data = append(data, binaryCopySignature...)
	data = append(data, 0, 0, 0, 0, 0, 0, 0, 0)
	for _, k := range []int64{1, -2, 3} {
		data = append(data, 0, 2)
		data = binary.BigEndian.AppendUint32(data, 8)
		data = binary.BigEndian.AppendUint64(data, uint64(k))
		data = binary.BigEndian.AppendUint32(data, 1)
		data = append(data, 'x')
	}
	data = append(data, 0xff, 0xff)
	// Every chunking gives the same rows.
	for size := 1; size <= len(data); size += 7 {
		r := &binaryCopyReader{keyField: 0}
		var keys []int64
		var rows bytes.Buffer
		for off := 0; off < len(data); off += size {
			end := min(off+size, len(data))
			err := r.feed(data[off:end], func(row, key []byte, null, header bool) error {
				rows.Write(row)
				if !header {
					keys = append(keys, int64(binary.BigEndian.Uint64(key)))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("chunk %d: %v", size, err)
			}
		}
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 3 || keys[1] != -2 || !bytes.Equal(rows.Bytes(), data[:len(data)-2]) {
			t.Fatalf("chunk %d: keys %v", size, keys)
		}
	}
}

func FuzzBinaryCopy(f *testing.F) {
	f.Add(append(append([]byte{}, binaryCopySignature...), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 'a', 0xff, 0xff), 0, 3)
	f.Add([]byte("PGCOPY\n"), 1, 1)
	f.Fuzz(func(t *testing.T, data []byte, keyField, chunk int) {
		if keyField < 0 || chunk <= 0 {
			return
		}
		r := &binaryCopyReader{keyField: keyField % 4}
		var out []byte
		for off := 0; off < len(data); off += chunk {
			end := min(off+chunk, len(data))
			if err := r.feed(data[off:end], func(row, key []byte, null, header bool) error {
				out = append(out, row...)
				return nil
			}); err != nil {
				return
			}
		}
		if !bytes.HasPrefix(data, out) {
			t.Fatalf("rows are not a prefix of the input")
		}
	})
}

func FuzzTextArray(f *testing.F) {
	for _, s := range []string{`{1,2,3}`, `{"a b",NULL,"c\"d"}`, `{}`, `{`, `{1,{2}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseTextArray(s)
	})
}
