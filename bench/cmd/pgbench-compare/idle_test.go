package main

// Tests for the idle-client measurement's pure parts: reading /proc's
// memory figures, deciding that memory has settled, and the bytes of the
// login.

import (
	"bytes"
	"testing"
)

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  string
		want    memory
		wantErr bool
	}{
		{
			name:   "linux 6",
			status: "Name:\tshardproxy\nVmPeak:\t 1300000 kB\nVmRSS:\t   23456 kB\nRssAnon:\t   12345 kB\nRssFile:\t   11111 kB\nThreads:\t9\n",
			want:   memory{RSSKiB: 23456, AnonKiB: 12345},
		},
		{name: "no RssAnon (kernel before 4.5)", status: "VmRSS:\t 100 kB\n", wantErr: true},
		{name: "other unit", status: "VmRSS:\t 100 MB\nRssAnon:\t 1 kB\n", wantErr: true},
		{name: "not a number", status: "VmRSS:\t x kB\nRssAnon:\t 1 kB\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatus(tc.status)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSettled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples []int64
		want    bool
	}{
		{"none", nil, false},
		{"flat", []int64{1000, 1000, 1000}, true},
		{"within 256 KiB of a small set", []int64{20000, 20256, 20100}, true},
		{"257 KiB on a small set", []int64{20000, 20257}, false},
		{"within 0.5% of a large set", []int64{300000, 301400, 301500}, true},
		{"still growing", []int64{200000, 250000, 300000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := settled(tc.samples); got != tc.want {
				t.Errorf("settled(%v) = %v, want %v", tc.samples, got, tc.want)
			}
		})
	}
}

func TestPerClientKiB(t *testing.T) {
	r := idleResult{Clients: 1000, Before: memory{RSSKiB: 10000, AnonKiB: 4000}, After: memory{RSSKiB: 30500, AnonKiB: 22000}}
	rss, anon := r.perClientKiB()
	if rss != 20.5 || anon != 18 {
		t.Errorf("per client %v KiB VmRSS, %v KiB RssAnon", rss, anon)
	}
}

func TestStartupMessage(t *testing.T) {
	got := startupMessage("idle", "app")
	params := "user\x00idle\x00database\x00app\x00application_name\x00pgbench-compare idle\x00\x00"
	want := append([]byte{0, 0, 0, byte(8 + len(params)), 0, 3, 0, 0}, params...)
	if !bytes.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestErrorResponseText(t *testing.T) {
	body := []byte("SFATAL\x00VFATAL\x00C53300\x00Msorry, too many clients already\x00Dlimit 10000\x00\x00")
	if got, want := errorResponseText(body), "FATAL 53300: sorry, too many clients already (limit 10000)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := errorResponseText([]byte("SERROR\x00Mtrunc")); got != "ERROR : " {
		t.Errorf("truncated body: %q", got)
	}
}
