package admin

// A Go client for the admin API, used by `shardproxy admin`, by tests, and
// by the server itself to ask other nodes about themselves and to forward
// writes to the leader. Its errors are written for the person at the
// terminal: the three failures people actually meet (nothing listening, a
// wrong token, no leader) each get a sentence rather than an HTTP status.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/keyspace"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Addr is a node's HTTP address: http://host:port, or host:port.
	Addr string
	// Token is the admin token (admin_token).
	Token string
	// Timeout bounds each call; 0 means 30s. A context deadline also
	// applies.
	Timeout time.Duration
	// Transport carries the requests; nil uses http.DefaultTransport.
	Transport http.RoundTripper
}

// Client calls one node's admin API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient builds a client for the node at cfg.Addr.
func NewClient(cfg ClientConfig) (*Client, error) {
	base := baseURL(cfg.Addr)
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("admin: %q is not a node address such as http://127.0.0.1:9187", cfg.Addr)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return &Client{base: base, token: cfg.Token, http: &http.Client{Transport: cfg.Transport, Timeout: timeout}}, nil
}

// baseURL accepts the host:port the node directory holds as well as a URL.
func baseURL(addr string) string {
	addr = strings.TrimSpace(addr)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// Addr is the base URL the client calls.
func (c *Client) Addr() string { return c.base }

// Status is every node as the called node sees it.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	return get[Status](ctx, c, "status")
}

// Local is what the called node says about itself.
func (c *Client) Local(ctx context.Context) (*Local, error) {
	return get[Local](ctx, c, "local")
}

// Shards lists the shards in the called node's map.
func (c *Client) Shards(ctx context.Context) (*ShardList, error) {
	return get[ShardList](ctx, c, "shards")
}

// Tables lists the tables in the called node's map.
func (c *Client) Tables(ctx context.Context) (*TableList, error) {
	return get[TableList](ctx, c, "tables")
}

// Ranges lists the ranges in the called node's map.
func (c *Client) Ranges(ctx context.Context) (*RangeList, error) {
	return get[RangeList](ctx, c, "ranges")
}

// SplitAt cuts the range containing at so that at starts the upper half.
func (c *Client) SplitAt(ctx context.Context, at keyspace.ID) (*SplitResult, error) {
	return c.split(ctx, SplitRequest{At: formatID(at)}, "")
}

// SplitRange cuts the range starting at lo in the middle.
func (c *Client) SplitRange(ctx context.Context, lo keyspace.ID) (*SplitResult, error) {
	return c.split(ctx, SplitRequest{RangeLo: formatID(lo)}, "")
}

func get[T any](ctx context.Context, c *Client, endpoint string) (*T, error) {
	var out T
	if err := c.do(ctx, http.MethodGet, endpoint, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// split is SplitAt and SplitRange; forwardedBy is set when a follower
// forwards a user's write.
func (c *Client) split(ctx context.Context, req SplitRequest, forwardedBy string) (*SplitResult, error) {
	var out SplitResult
	if err := c.do(ctx, http.MethodPost, "split", req, forwardedBy, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) do(ctx context.Context, method, endpoint string, in any, forwardedBy string, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+PathPrefix+endpoint, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if forwardedBy != "" {
		req.Header.Set(forwardedHeader, forwardedBy)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctx.Err() // the caller gave up; not the node's fault
		}
		return &UnreachableError{Addr: c.base, Err: err}
	}
	defer resp.Body.Close()
	// Bounded: a misdirected --addr may point at anything.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return &UnreachableError{Addr: c.base, Err: err}
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s answered with something that is not the admin API's JSON (is it a shardproxy HTTP port?): %w", c.base, err)
		}
		return nil
	}
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
		return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("%s answered %s, not the admin API's JSON (is it a shardproxy HTTP port?)", c.base, resp.Status)}
	}
	return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error}
}

// ErrUnauthorized matches (errors.Is) an APIError for a refused token.
var ErrUnauthorized = errors.New("the admin token was refused")

// ErrNoLeader matches (errors.Is) an APIError saying the cluster has no
// leader to apply a write.
var ErrNoLeader = errors.New("the cluster has no leader right now")

// APIError is an error answer from a node.
type APIError struct {
	Status  int    // HTTP status
	Code    string // the API's code (unauthorized, bad_request, rejected, no_leader, ...); "" from a server that is not shardproxy
	Message string // the node's explanation
}

func (e *APIError) Error() string {
	switch e.Code {
	case codeUnauthorized:
		return ErrUnauthorized.Error() + " (" + e.Message + ")"
	case codeNoLeader:
		return ErrNoLeader.Error() + ": " + e.Message
	}
	return e.Message
}

// Is makes errors.Is(err, ErrUnauthorized) and errors.Is(err, ErrNoLeader)
// work.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Code == codeUnauthorized
	case ErrNoLeader:
		return e.Code == codeNoLeader
	}
	return false
}

// UnreachableError says no node answered at Addr.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return "no shardproxy node answers at " + e.Addr + " (" + reason(e.Err) + ")"
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// reason is the part of a transport error a person can act on, without
// the "Get "http://...": dial tcp ...:" preamble.
func reason(err error) string {
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.As(err, &op) && op.Err != nil:
		return op.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
