package cluster_test

// Three proxy nodes on loopback keep the shard map in Raft in front of two
// real shards, each node its own process: any node answers, a split asked
// of a follower reaches every node, a stopped follower catches up, the
// leader's death costs no query, an in-doubt transaction of the dead
// leader is settled by a survivor, the map survives a restart of all
// three, a cancel sent to another node cancels, and the admin surfaces
// refuse who they should.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardproxy/shardproxy/backend"
	"github.com/shardproxy/shardproxy/keyspace"
	"github.com/shardproxy/shardproxy/test/testenv"
)

const token = "cluster-test-token"

type proxyNode struct {
	id       string
	raftAddr string
	dataDir  string
	p        *testenv.Proxy
}

func (n *proxyNode) url() string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", testenv.AppUser, testenv.AppPassword, n.p.Addr, testenv.Database)
}

type fleet struct {
	t     *testing.T
	bin   string
	nodes []*proxyNode
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{t: t, bin: testenv.BuildBinary(t)}
	for i := 1; i <= 3; i++ {
		f.nodes = append(f.nodes, &proxyNode{id: fmt.Sprintf("n%d", i), raftAddr: testenv.FreeAddr(t), dataDir: t.TempDir()})
	}
	return f
}

func (f *fleet) yaml(n *proxyNode) string {
	var peers []string
	for _, o := range f.nodes {
		peers = append(peers, o.id+"@"+o.raftAddr)
	}
	y := fmt.Sprintf("node_id: %s\nadmin_token: %s\nraft:\n  listen: %s\n  peers: [%s]\n  bootstrap: %v\n",
		n.id, token, n.raftAddr, strings.Join(peers, ", "), n.id == "n1")
	y += "users:\n  - {name: app, password: app}\n  - {name: admin, password: secret, admin: true, backend_user: app, backend_password: app}\nshards:\n"
	for _, sh := range cluster.Shards {
		y += fmt.Sprintf("  - {id: %s, primary: %s}\n", sh.ID, sh.Primary.Addr())
	}
	y += "tables:\n  - {name: pairs, key: k}\n"
	return y
}

// start runs a node (again) without waiting for it; env adds fault
// injection.
func (f *fleet) start(n *proxyNode, env ...string) {
	n.p = testenv.ServeBinaryWith(f.t, f.bin, f.yaml(n), testenv.ServeOptions{DataDir: n.dataDir, Env: env, MayExit: true, NoWait: true})
}

// startAll starts every node, then waits for all to be ready: a Raft
// cluster needs a quorum up before any node has a map.
func (f *fleet) startAll(env ...string) {
	for _, n := range f.nodes {
		f.start(n, env...)
	}
	for _, n := range f.nodes {
		f.ready(n)
	}
}

func (f *fleet) ready(n *proxyNode) {
	if err := n.p.WaitReady(); err != nil {
		f.t.Fatalf("node %s: %v\n%s", n.id, err, n.p.LogTail(3000))
	}
}

// local is a node's own view: GET /admin/v1/local.
type local struct {
	ID         string `json:"id"`
	Role       string `json:"role"`
	MapVersion uint64 `json:"map_version"`
}

func getJSON(ctx context.Context, url string, out any) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

func (f *fleet) local(ctx context.Context, n *proxyNode) (local, error) {
	var l local
	code, err := getJSON(ctx, "http://"+n.p.HTTPAddr+"/admin/v1/local", &l)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("status %d", code)
	}
	return l, err
}

// leader waits for exactly one leader among the live nodes.
func (f *fleet) leader(ctx context.Context, live []*proxyNode) *proxyNode {
	var found *proxyNode
	testenv.WaitFor(f.t, ctx, "one leader", func() (bool, error) {
		found = nil
		leaders := 0
		for _, n := range live {
			l, err := f.local(ctx, n)
			if err != nil {
				return false, nil
			}
			if l.Role == "leader" {
				leaders++
				found = n
			}
		}
		return leaders == 1, nil
	})
	return found
}

// sameVersion waits until every live node routes with one map version
// at least min, and returns it.
func (f *fleet) sameVersion(ctx context.Context, live []*proxyNode, min uint64) uint64 {
	var v uint64
	testenv.WaitFor(f.t, ctx, fmt.Sprintf("every node at map version >= %d", min), func() (bool, error) {
		v = 0
		for _, n := range live {
			l, err := f.local(ctx, n)
			if err != nil || l.MapVersion < min || (v != 0 && l.MapVersion != v) {
				return false, nil
			}
			v = l.MapVersion
		}
		return true, nil
	})
	return v
}

func (f *fleet) admin(ctx context.Context, n *proxyNode, args ...string) (string, error) {
	all := append([]string{"admin", "--addr", "http://" + n.p.HTTPAddr, "--token", token}, args...)
	out, err := exec.CommandContext(ctx, f.bin, all...).CombinedOutput()
	return string(out), err
}

func TestClusterLifecycle(t *testing.T) {
	ctx := testenv.TestCtx(t, 6*time.Minute)
	testenv.ExecOnPrimaries(t, ctx, cluster, "DROP TABLE IF EXISTS pairs; CREATE TABLE pairs (k bigint PRIMARY KEY, v int)")
	f := newFleet(t)
	// Every node may die by its own hand after PREPARE; only the leader
	// is ever asked to commit a two-shard write.
	f.startAll("SHARDPROXY_FAULT=kill-after-prepare")
	all := f.nodes
	leader := f.leader(ctx, all)
	v0 := f.sameVersion(ctx, all, 1)

	// Any node answers queries, and status on any node shows the fleet.
	for _, n := range all {
		conn := testenv.Connect(t, ctx, n.url())
		if _, err := conn.Exec(ctx, "INSERT INTO pairs VALUES ($1, 1)", int64(len(n.id))*1000+int64(n.id[1])); err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
		conn.Close(ctx)
		out, err := f.admin(ctx, n, "status", "-o", "json")
		if err != nil {
			t.Fatalf("admin status on %s: %v\n%s", n.id, err, out)
		}
		var st struct {
			Leader string `json:"leader"`
			Nodes  []struct {
				ID         string `json:"id"`
				Role       string `json:"role"`
				MapVersion uint64 `json:"map_version"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("admin status -o json on %s: %v\n%s", n.id, err, out)
		}
		leaders := 0
		for _, sn := range st.Nodes {
			if sn.Role == "leader" {
				leaders++
			}
			if sn.MapVersion != v0 {
				t.Errorf("status on %s: node %s at map version %d, want %d", n.id, sn.ID, sn.MapVersion, v0)
			}
		}
		if len(st.Nodes) != 3 || leaders != 1 || st.Leader != leader.id {
			t.Errorf("status on %s: %d nodes, %d leaders, leader %q (want 3, 1, %s)", n.id, len(st.Nodes), leaders, st.Leader, leader.id)
		}
	}

	// A split asked of a follower, with another follower stopped.
	var followers []*proxyNode
	for _, n := range all {
		if n != leader {
			followers = append(followers, n)
		}
	}
	stopped := followers[1]
	pid := stopped.p.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	out, err := f.admin(ctx, followers[0], "split", "--at", "4611686018427387904")
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		t.Fatalf("split at a follower: %v\n%s", err, out)
	}
	splitDeadline, cancel := context.WithTimeout(ctx, time.Second)
	v1 := f.sameVersion(splitDeadline, []*proxyNode{leader, followers[0]}, v0+1)
	cancel()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	f.sameVersion(ctx, all, v1)
	out, err = f.admin(ctx, stopped, "ranges", "-o", "json")
	if err != nil || !strings.Contains(out, `"4611686018427387904"`) {
		t.Errorf("ranges on the follower that was stopped: %v\n%s", err, out)
	}

	// Queries through the survivors never stop while the leader dies.
	var survivors []*proxyNode
	survivors = append(survivors, followers...)
	var queries, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, n.url())
			if err != nil {
				failures.Add(1)
				firstFailure.CompareAndSwap(nil, err.Error())
				return
			}
			defer conn.Close(context.Background())
			for i := int64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var x int
				if err := conn.QueryRow(ctx, "SELECT count(*) FROM pairs WHERE k = $1", i%100).Scan(&x); err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
				queries.Add(1)
			}
		}()
	}
	// The leader commits a two-shard write and dies after PREPARE.
	a, b := keysOnTwoShards()
	lc, err := pgx.Connect(ctx, leader.url())
	if err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	_, err = lc.Exec(ctx, "INSERT INTO pairs VALUES ($1, 7), ($2, 7)", a, b)
	if err == nil {
		t.Fatal("the leader committed instead of dying at its fault point")
	}
	testenv.WaitFor(t, ctx, "the leader to die", func() (bool, error) { return leader.p.Exited(), nil })
	newLeader := f.leader(ctx, survivors)
	if took := time.Since(killedAt); took > 5*time.Second {
		t.Errorf("a new leader took %s", took)
	}
	// Let the survivors query a while under the new leader.
	before := queries.Load()
	testenv.WaitFor(t, ctx, "queries under the new leader", func() (bool, error) { return queries.Load() > before+200, nil })
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d queries through the survivors failed; first: %v", n, queries.Load(), firstFailure.Load())
	}
	if out, err := f.admin(ctx, newLeader, "split", "--at", "-4611686018427387904"); err != nil {
		t.Errorf("split after the leader died: %v\n%s", err, out)
	}
	// The dead leader's prepared transaction is settled by a survivor.
	for _, sh := range cluster.Shards {
		conn := testenv.Connect(t, ctx, testenv.DirectURL(cluster, sh.Primary, testenv.AppUser, testenv.AppPassword))
		testenv.WaitFor(t, ctx, "a survivor to settle the dead leader's transaction on "+sh.ID, func() (bool, error) {
			var n int
			err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_xacts").Scan(&n)
			return n == 0, err
		})
		var rows int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pairs WHERE v = 7").Scan(&rows); err != nil || rows != 0 {
			t.Errorf("%s: the undecided transaction left %d rows (%v)", sh.ID, rows, err)
		}
		conn.Close(ctx)
	}
	// The dead node comes back and catches up.
	f.start(leader)
	f.ready(leader)
	v2 := f.sameVersion(ctx, all, v1+1)

	// Every node restarted: the map stays (no seeding over it).
	for _, n := range all {
		n.p.Stop(t)
	}
	f.startAll()
	f.leader(ctx, all)
	if v := f.sameVersion(ctx, all, v2); v < v2 {
		t.Errorf("after restarting all: version %d, want at least %d", v, v2)
	}
	out, err = f.admin(ctx, all[2], "ranges", "-o", "json")
	if err != nil || !strings.Contains(out, `"4611686018427387904"`) || !strings.Contains(out, `"-4611686018427387904"`) {
		t.Errorf("ranges after restarting all: %v\n%s", err, out)
	}

	// A cancel sent to another node cancels. That node forwards it to the
	// address the directory has for the first: wait until the restarted
	// first node's new address is there.
	testenv.WaitFor(t, ctx, "the second node to know the first's new address", func() (bool, error) {
		out, err := f.admin(ctx, all[1], "status", "-o", "json")
		if err != nil {
			return false, nil
		}
		var st struct {
			Nodes []struct {
				ID     string `json:"id"`
				PGAddr string `json:"pg_addr"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return false, err
		}
		for _, sn := range st.Nodes {
			if sn.ID == all[0].id {
				return sn.PGAddr == all[0].p.Addr, nil
			}
		}
		return false, nil
	})
	conn := testenv.Connect(t, ctx, all[0].url())
	defer conn.Close(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(30)")
		done <- err
	}()
	testenv.WaitFor(t, ctx, "the query to run", func() (bool, error) {
		probe, err := pgx.Connect(ctx, testenv.DirectURL(cluster, cluster.Shards[0].Primary, testenv.AppUser, testenv.AppPassword))
		if err != nil {
			return false, err
		}
		defer probe.Close(ctx)
		var n int
		err = probe.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'").Scan(&n)
		return n > 0, err
	})
	if err := backend.SendCancel(ctx, all[1].p.Addr, conn.PgConn().PID(), conn.PgConn().SecretKey()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		testenv.RequireCode(t, err, "57014")
	case <-time.After(20 * time.Second):
		t.Fatal("the cancel sent to another node did not cancel the query")
	}
}

// keysOnTwoShards returns a key owned by each of the two shards (the first
// half of the keyspace is s1's in the initial map, and splits move nothing).
func keysOnTwoShards() (int64, int64) {
	var a, b int64
	for k := int64(100000); a == 0 || b == 0; k++ {
		if keyspace.Int(k) < 0 {
			a = k
		} else {
			b = k
		}
	}
	return a, b
}

func TestAdminRefusals(t *testing.T) {
	ctx := testenv.TestCtx(t, 2*time.Minute)
	f := newFleet(t)
	f.nodes = f.nodes[:1]
	f.nodes[0].raftAddr = testenv.FreeAddr(t)
	n := f.nodes[0]
	f.start(n)
	f.ready(n)
	// No token: 401.
	resp, err := http.Get("http://" + n.p.HTTPAddr + "/admin/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status without a token: %d, want 401", resp.StatusCode)
	}
	// Bad requests: 4xx with a message.
	for _, body := range []string{`{"at": "x"}`, `{`, `{"at": "9223372036854775808"}`, `{}`} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n.p.HTTPAddr+"/admin/v1/split", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("split %s: %d, want 4xx", body, resp.StatusCode)
		}
	}
	if out, err := f.admin(ctx, n, "status"); err != nil || !strings.Contains(out, "n1") {
		t.Errorf("admin status: %v\n%s", err, out)
	}
	// The console: admins only.
	_, err = pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/shardproxy?sslmode=disable", testenv.AppUser, testenv.AppPassword, n.p.Addr))
	if code := testenv.PGCode(err); code != "28000" && code != "42501" {
		t.Errorf("a non-admin user in the console: %v, want 28000 or 42501", err)
	}
	adm, err := pgx.Connect(ctx, fmt.Sprintf("postgres://admin:secret@%s/shardproxy?sslmode=disable", n.p.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(ctx)
	rows, err := adm.Query(ctx, "SHOW SHARDS", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for rows.Next() {
		count++
	}
	if rows.Err() != nil || count < 2 {
		t.Errorf("SHOW SHARDS: %d rows, %v", count, rows.Err())
	}
}

func TestNonvoterJoins(t *testing.T) {
	ctx := testenv.TestCtx(t, 2*time.Minute)
	f := newFleet(t)
	voter, joiner := f.nodes[0], f.nodes[1]
	f.nodes = f.nodes[:1]
	f.start(voter)
	f.ready(voter)
	// The joiner is not among the peers; it joins through the voter.
	y := strings.Replace(f.yaml(voter), "node_id: n1", "node_id: n2", 1)
	y = strings.Replace(y, "listen: "+voter.raftAddr, "listen: "+joiner.raftAddr+"\n  join: ["+voter.p.HTTPAddr+"]", 1)
	y = strings.Replace(y, "bootstrap: true", "bootstrap: false", 1)
	joiner.p = testenv.ServeBinaryWith(t, f.bin, y, testenv.ServeOptions{DataDir: joiner.dataDir, MayExit: true})
	var st struct {
		Nodes []struct {
			ID   string `json:"id"`
			Role string `json:"role"`
		} `json:"nodes"`
	}
	out, err := f.admin(ctx, joiner, "status", "-o", "json")
	if err != nil {
		t.Fatalf("status on the joiner: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, n := range st.Nodes {
		roles[n.ID] = n.Role
	}
	if roles["n1"] != "leader" || roles["n2"] != "nonvoter" {
		t.Fatalf("roles %v, want n1 leader and n2 nonvoter\n%s", roles, out)
	}
	// It routes like any node, and writes asked of it reach the leader.
	conn := testenv.Connect(t, ctx, joiner.url())
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	v := f.sameVersion(ctx, []*proxyNode{voter, joiner}, 1)
	if out, err := f.admin(ctx, joiner, "split", "--at", "123456789"); err != nil {
		t.Fatalf("split at the non-voter: %v\n%s", err, out)
	}
	f.sameVersion(ctx, []*proxyNode{voter, joiner}, v+1)
}
