package localpg

// This file starts and stops a whole cluster: directory, initdb template,
// primaries, roles and databases, replicas.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Cluster is a set of running shards. Its methods are safe for concurrent
// use; each Server serialises its own Start, Stop and Kill.
type Cluster struct {
	Shards        []*Shard
	Dir           string
	SuperUser     string // "postgres"
	SuperPassword string // generated when the template is made

	cfg     Config
	log     *slog.Logger
	binDir  string
	ident   identity
	sp      *spawner
	ownsDir bool // Start made Dir, so Stop removes it

	stopOnce sync.Once
	stopErr  error
}

// Shard is a primary and its streaming replicas.
type Shard struct {
	ID       string // "s1", "s2", ...
	Primary  *Server
	Replicas []*Server

	c *Cluster
}

// maxSocketDir keeps "<dir>/.s.PGSQL.65535" within sun_path (108 bytes
// including the terminating NUL).
const maxSocketDir = 107 - len("/.s.PGSQL.65535")

// Start starts the cluster that cfg describes and returns once every
// primary accepts connections, has its roles and databases, and every
// replica streams. On error, whatever was started is stopped again. ctx
// bounds the start only; the servers run until Stop.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	began := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	binDir, err := FindBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	ident, err := lookupIdentity()
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		SuperUser: "postgres",
		cfg:       cfg,
		log:       cfg.Logger,
		binDir:    binDir,
		ident:     ident,
	}
	if err := c.makeDir(); err != nil {
		return nil, err
	}
	c.sp = newSpawner()
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				c.log.Warn("localpg: cleaning up after a failed start", "err", stopErr)
			}
		}
	}()

	for i := range cfg.Shards {
		sh := &Shard{ID: "s" + strconv.Itoa(i+1), c: c}
		sh.Primary = c.newServer(sh.ID, false)
		for j := range cfg.Replicas {
			sh.Replicas = append(sh.Replicas, c.newServer(sh.ID+"r"+strconv.Itoa(j+1), true))
		}
		c.Shards = append(c.Shards, sh)
	}
	for _, s := range c.Servers() {
		if len(s.DataDir) > maxSocketDir {
			return nil, fmt.Errorf("localpg: directory %s is too long for a Unix socket path (at most %d bytes); use a shorter Config.Dir", s.DataDir, maxSocketDir)
		}
		if _, err := os.Lstat(s.DataDir); !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("localpg: %s already exists; remove it or use another Config.Dir", s.DataDir)
		}
	}

	if err := c.copyTemplate(ctx); err != nil {
		return nil, err
	}
	errs := make([]error, len(c.Shards))
	var wg sync.WaitGroup
	for i, sh := range c.Shards {
		wg.Go(func() { errs[i] = sh.start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.log.Info("localpg: cluster ready", "dir", c.Dir, "shards", cfg.Shards, "replicas", cfg.Replicas, "took", time.Since(began).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) newServer(name string, replica bool) *Server {
	return &Server{Host: "127.0.0.1", DataDir: filepath.Join(c.Dir, name), name: name, c: c, replica: replica}
}

// makeDir creates (or adopts) the base directory and hands it to the
// server user.
func (c *Cluster) makeDir() error {
	if c.cfg.Dir == "" {
		dir, err := os.MkdirTemp("/tmp", "shardpg-")
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		c.Dir, c.ownsDir = dir, true
	} else {
		dir, err := filepath.Abs(c.cfg.Dir)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		c.Dir = dir
	}
	if err := c.ident.chown(c.Dir); err != nil {
		c.removeDir()
		return err
	}
	if err := c.ident.checkReachable(c.Dir); err != nil {
		c.removeDir()
		return err
	}
	return nil
}

func (c *Cluster) removeDir() {
	if c.ownsDir {
		if err := os.RemoveAll(c.Dir); err != nil {
			c.log.Warn("localpg: removing cluster directory", "dir", c.Dir, "err", err)
		}
	}
}

// copyTemplate makes (or reuses) the initdb template and copies it into
// every primary's data directory. A template private to this cluster is
// renamed into the first primary's rather than copied: copying a data
// directory (about 1,000 files) costs more than a second on some disks.
func (c *Cluster) copyTemplate(ctx context.Context) error {
	tmpl, release, err := c.template(ctx)
	if err != nil {
		return err
	}
	defer release()
	began := time.Now()
	targets := c.Shards
	private := c.cfg.TemplateDir == ""
	if private {
		targets = c.Shards[1:]
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, sh := range targets {
		wg.Go(func() {
			errs[i] = c.run(ctx, c.command(ctx, "cp", "-a", "--", tmpl, sh.Primary.DataDir))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if private {
		if err := os.Rename(tmpl, c.Shards[0].Primary.DataDir); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
	}
	c.log.Debug("localpg: template copied", "copies", len(targets), "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// template returns the data directory made by initdb, making it if needed,
// and sets SuperPassword. A shared template (Config.TemplateDir) is reused
// when whole, and stays locked (shared) until release is called, so that
// another process cannot remake it meanwhile; a private one, inside Dir, is
// always made afresh.
func (c *Cluster) template(ctx context.Context) (dataDir string, release func(), err error) {
	dir := c.cfg.TemplateDir
	shared := dir != ""
	if !shared {
		dir = filepath.Join(c.Dir, "template")
	} else if dir, err = filepath.Abs(dir); err != nil {
		return "", nil, fmt.Errorf("localpg: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("localpg: template: %w", err)
	}
	if err := c.ident.chown(dir); err != nil {
		return "", nil, err
	}
	if err := c.ident.checkReachable(dir); err != nil {
		return "", nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("localpg: template: %w", err)
	}
	release = func() {
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		lock.Close()
	}
	if err := flock(ctx, lock, syscall.LOCK_EX); err != nil {
		release()
		return "", nil, fmt.Errorf("localpg: template: locking %s: %w", lock.Name(), err)
	}

	dataDir = filepath.Join(dir, "data")
	pwFile := filepath.Join(dir, "superuser-password")
	stampFile := filepath.Join(dir, "stamp")
	// The stamp is written last: its presence means the template is whole.
	stamp := "shardproxy localpg template v1\nbindir " + c.binDir + "\n"
	if shared {
		got, err := os.ReadFile(stampFile)
		_, verr := os.Stat(filepath.Join(dataDir, "PG_VERSION"))
		pw, perr := os.ReadFile(pwFile)
		if err == nil && string(got) == stamp && verr == nil && perr == nil && len(pw) > 1 {
			c.SuperPassword = strings.TrimSpace(string(pw))
			c.log.Debug("localpg: reusing template", "dir", dir)
		}
	}
	if c.SuperPassword == "" {
		if err := c.initdb(ctx, dataDir, pwFile, stampFile, stamp); err != nil {
			release()
			return "", nil, err
		}
	}
	// Downgrade: other clusters may copy the template at the same time.
	if err := flock(ctx, lock, syscall.LOCK_SH); err != nil {
		release()
		return "", nil, fmt.Errorf("localpg: template: locking %s: %w", lock.Name(), err)
	}
	return dataDir, release, nil
}

// flock takes a flock(2) lock, polling so that ctx can end the wait (the
// holder may be another process running initdb).
func flock(ctx context.Context, f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// initdb (re)makes the template in dataDir. The caller holds the lock.
func (c *Cluster) initdb(ctx context.Context, dataDir, pwFile, stampFile, stamp string) error {
	began := time.Now()
	_ = os.Remove(stampFile)
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("localpg: template: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	pw := hex.EncodeToString(raw[:])
	if err := c.writeFile(pwFile, pw+"\n"); err != nil {
		return err
	}
	cmd := c.command(ctx, filepath.Join(c.binDir, "initdb"),
		"-D", dataDir,
		"--locale=C", "--encoding=UTF8",
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"--username=postgres", "--pwfile="+pwFile,
		"--no-sync", "--no-instructions")
	if err := c.run(ctx, cmd); err != nil {
		return fmt.Errorf("localpg: initdb: %w", err)
	}
	// Every server writes its own settings into confFile at each start.
	conf := filepath.Join(dataDir, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("localpg: template: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Added by shardproxy's localpg: per-server settings.\ninclude = '%s'\n", confFile)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("localpg: template: %w", err)
	}
	if err := c.writeFile(stampFile, stamp); err != nil {
		return err
	}
	c.SuperPassword = pw
	c.log.Info("localpg: initdb done", "dir", dataDir, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// start brings up a shard: primary, roles and databases, then its replicas
// in parallel, then waits until they stream.
func (sh *Shard) start(ctx context.Context) error {
	c := sh.c
	if err := sh.Primary.startNew(ctx); err != nil {
		return err
	}
	began := time.Now()
	if err := c.setupPrimary(ctx, sh.Primary); err != nil {
		return err
	}
	c.log.Debug("localpg: roles and databases created", "server", sh.Primary.name, "took", time.Since(began).Round(time.Millisecond))
	errs := make([]error, len(sh.Replicas))
	var wg sync.WaitGroup
	for i, r := range sh.Replicas {
		wg.Go(func() { errs[i] = c.startReplica(ctx, sh.Primary, r) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return sh.WaitStreaming(ctx)
}

// setupPrimary creates the configured roles and databases.
func (c *Cluster) setupPrimary(ctx context.Context, s *Server) error {
	var stmts []string
	for _, r := range c.cfg.Roles {
		q := "CREATE ROLE " + quoteIdent(r.Name) + " LOGIN"
		if r.Superuser {
			q += " SUPERUSER"
		}
		if r.Password != "" {
			q += " PASSWORD " + quoteLiteral(r.Password)
		}
		stmts = append(stmts, q)
	}
	for _, u := range c.cfg.TrustUsers {
		stmts = append(stmts, "CREATE ROLE "+quoteIdent(u)+" LOGIN")
	}
	owner := c.SuperUser
	if len(c.cfg.Roles) > 0 {
		owner = c.cfg.Roles[0].Name
	}
	for _, db := range c.cfg.Databases {
		// One statement per Exec: CREATE DATABASE cannot run in the
		// implicit transaction of a multi-statement query.
		stmts = append(stmts, "CREATE DATABASE "+quoteIdent(db)+" OWNER "+quoteIdent(owner))
	}
	if len(stmts) == 0 {
		return nil
	}
	conn, err := pgconn.Connect(ctx, c.SuperConnString(s, "postgres"))
	if err != nil {
		return fmt.Errorf("localpg: server %s: %w", s.name, err)
	}
	defer conn.Close(context.Background())
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q).ReadAll(); err != nil {
			return fmt.Errorf("localpg: server %s: %s: %w", s.name, strings.Fields(q)[0]+" "+strings.Fields(q)[1], err)
		}
	}
	return nil
}

// startReplica takes a base backup of primary into r's data directory and
// starts r as a streaming replica.
func (c *Cluster) startReplica(ctx context.Context, primary, r *Server) error {
	began := time.Now()
	cmd := c.command(ctx, filepath.Join(c.binDir, "pg_basebackup"),
		"-h", primary.Host, "-p", strconv.Itoa(primary.Port), "-U", c.SuperUser,
		"-d", "application_name="+r.name, // kept in primary_conninfo by -R
		"-D", r.DataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	cmd.Env = append(cmd.Env, "PGPASSWORD="+c.SuperPassword)
	if err := c.run(ctx, cmd); err != nil {
		return fmt.Errorf("localpg: replica %s of %s: %w", r.name, primary.name, err)
	}
	// The backup copied the primary's log; the replica starts its own.
	if err := os.Remove(r.LogFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("localpg: replica %s: %w", r.name, err)
	}
	c.log.Debug("localpg: base backup done", "server", r.name, "took", time.Since(began).Round(time.Millisecond))
	return r.startNew(ctx)
}

// WaitStreaming waits until every replica of the shard streams from the
// primary (pg_stat_replication on the primary shows it as 'streaming'), for
// at most Config.StartTimeout.
func (sh *Shard) WaitStreaming(ctx context.Context) error {
	if len(sh.Replicas) == 0 {
		return nil
	}
	timeout := sh.c.cfg.StartTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	names := make([]string, len(sh.Replicas))
	for i, r := range sh.Replicas {
		names[i] = quoteLiteral(r.name)
	}
	q := "SELECT count(DISTINCT application_name) FROM pg_stat_replication WHERE state = 'streaming' AND application_name IN (" + strings.Join(names, ", ") + ")"
	want := strconv.Itoa(len(sh.Replicas))
	got := "0"
	var conn *pgconn.PgConn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if conn == nil {
			conn, lastErr = pgconn.Connect(ctx, sh.c.SuperConnString(sh.Primary, "postgres"))
		}
		if conn != nil {
			res := conn.ExecParams(ctx, q, nil, nil, nil, nil).Read()
			if lastErr = res.Err; lastErr == nil && len(res.Rows) == 1 {
				got = string(res.Rows[0][0])
				if got == want {
					return nil
				}
			} else {
				conn.Close(context.Background())
				conn = nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			var b strings.Builder
			fmt.Fprintf(&b, "localpg: shard %s: %s of %s replicas streaming from %s after %v", sh.ID, got, want, sh.Primary.Addr(), timeout)
			if lastErr != nil {
				fmt.Fprintf(&b, " (last error: %v)", lastErr)
			}
			for _, r := range sh.Replicas {
				fmt.Fprintf(&b, "\n--- tail of %s ---\n%s", r.LogFile(), tail(r.logSince(0), 1500))
			}
			return fmt.Errorf("%s: %w", b.String(), ctx.Err())
		}
	}
}

// Servers returns every server: each shard's primary, then its replicas.
func (c *Cluster) Servers() []*Server {
	var all []*Server
	for _, sh := range c.Shards {
		all = append(all, sh.Primary)
		all = append(all, sh.Replicas...)
	}
	return all
}

// Stop stops every server (fast shutdown, then kill after
// Config.StopTimeout) and removes Dir if Start made it. It is idempotent
// and returns the first call's result; servers cannot be started again
// afterwards.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		began := time.Now()
		servers := c.Servers()
		errs := make([]error, len(servers))
		var wg sync.WaitGroup
		for i, s := range servers {
			wg.Go(func() { errs[i] = s.Stop(context.Background()) })
		}
		wg.Wait()
		if c.sp != nil {
			c.sp.close()
		}
		c.removeDir()
		c.stopErr = errors.Join(errs...)
		c.log.Info("localpg: cluster stopped", "dir", c.Dir, "took", time.Since(began).Round(time.Millisecond))
	})
	return c.stopErr
}

// ConnString returns a postgres:// URL for s. An empty password is left
// out (for trust users).
func (c *Cluster) ConnString(s *Server, user, password, db string) string {
	u := url.URL{Scheme: "postgres", Host: s.Addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// SuperConnString returns a postgres:// URL for s as the superuser.
func (c *Cluster) SuperConnString(s *Server, db string) string {
	return c.ConnString(s, c.SuperUser, c.SuperPassword, db)
}

// writeFile writes a file (mode 0600) and gives it to the server user.
func (c *Cluster) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return c.ident.chown(path)
}
