package admin_test

// Whatever a split request's body holds, the server answers with JSON and a
// 200, 400 or 409, and never panics: the body is the one part of the API
// an authenticated but careless (or hostile) caller controls completely.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/admin/admintest"
)

func FuzzSplitRequest(f *testing.F) {
	for _, seed := range []string{
		`{"at": "100"}`,
		`{"range_lo": "-9223372036854775808"}`,
		`{"at": "0"}`,
		`{"at": "1", "range_lo": "2"}`,
		`{"at": 1}`,
		`{"at": "9223372036854775807"}`,
		`{"at": "-1"}{}`,
		`null`,
		`{"at": "\u0000"}`,
		``,
	} {
		f.Add([]byte(seed))
	}
	m := testMap(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := admin.NewServer(admin.Config{Token: token}, admintest.New("n1", m))
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/admin/v1/split", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var res admin.SplitResult
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.MapVersion != m.Version+1 {
				t.Fatalf("200 with %s (%v)", rec.Body, err)
			}
		case http.StatusBadRequest, http.StatusConflict:
			var e struct{ Error, Code string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code == "" {
				t.Fatalf("%d with %s (%v)", rec.Code, rec.Body, err)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
