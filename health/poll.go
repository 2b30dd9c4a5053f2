package health

// One backend's poll: connect if needed, run the probe, parse it. The same
// probe runs on primaries and replicas because roles change under the
// monitor: a replica may be promoted and a primary may come back as
// anything, and the probe has to tell.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// probe returns (in recovery, position, timeline). Choices, checked on
// PostgreSQL 15:
//   - pg_is_in_recovery() is evaluated once, in a subquery that is not
//     flattened (OFFSET 0), so a promotion between two calls cannot mix a
//     standby's answer in one column with a primary's in another.
//   - Position is pg_last_wal_replay_lsn() in recovery (what reads see),
//     else pg_current_wal_insert_lsn(): with synchronous_commit off (or
//     WAL still in wal_buffers) the write position trails what has been
//     committed, which would hide a replica's lag and make read-your-writes
//     positions (the router asks the insert position) look unreachable.
//     The functions cost microseconds; the pg_stat_replication view costs
//     more to plan than this whole query.
//   - Timeline out of recovery comes from the WAL file name of the current
//     position (its first 8 hex digits): exact as soon as recovery ends.
//     pg_control_checkpoint().timeline_id changes only when the checkpoint
//     requested at promotion completes, and that checkpoint is spread
//     (checkpoint_completion_target), so it can lag a promotion by minutes.
//   - pg_walfile_name() refuses to run in recovery, so a standby's timeline
//     is its last restartpoint's (pg_control_checkpoint()): informational
//     only, it is never compared. pg_stat_wal_receiver.received_tli would
//     be fresher but is NULL for roles without pg_read_all_stats.
//   - pg_last_wal_replay_lsn() is NULL before a standby has replayed
//     anything; the coalesce keeps the Querier contract (no NULLs).
const probe = `SELECT r,
  CASE WHEN r THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_insert_lsn() END::text,
  CASE WHEN r THEN (SELECT timeline_id FROM pg_control_checkpoint())::bigint
       ELSE ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::bigint END
FROM (SELECT pg_is_in_recovery() AS r OFFSET 0) AS s`

// sample is one successful probe.
type sample struct {
	inRecovery bool
	lsn        LSN // replay position in recovery, else current WAL position
	timeline   uint32
}

func parseSample(cols []string) (sample, error) {
	if len(cols) != 3 {
		return sample{}, fmt.Errorf("health: probe returned %d columns, want 3", len(cols))
	}
	var s sample
	switch cols[0] {
	case "t":
		s.inRecovery = true
	case "f":
	default:
		return sample{}, fmt.Errorf("health: probe returned %q for pg_is_in_recovery()", cols[0])
	}
	lsn, err := ParseLSN(cols[1])
	if err != nil {
		return sample{}, fmt.Errorf("health: probe returned LSN %q: %w", cols[1], err)
	}
	s.lsn = lsn
	tl, err := strconv.ParseUint(cols[2], 10, 32)
	if err != nil {
		return sample{}, fmt.Errorf("health: probe returned timeline %q: %w", cols[2], err)
	}
	s.timeline = uint32(tl)
	return s, nil
}

// pollTimeout bounds one backend's poll, connecting included: less than an
// interval, so a round never runs into the next.
func (m *Monitor) pollTimeout() time.Duration { return m.cfg.Interval * 4 / 5 }

// poll probes b once, reusing its connection. A reused connection that
// fails is replaced and the probe retried once within the same deadline:
// a server restarted since the last round has dropped the old connection
// but is up, and must not be reported down for it. Called only by the
// round that owns b.
func (m *Monitor) poll(ctx context.Context, b *backend) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, m.pollTimeout())
	defer cancel()
	reused := b.conn != nil
	s, err := m.probeOnce(ctx, b)
	if err != nil && reused && ctx.Err() == nil {
		s, err = m.probeOnce(ctx, b)
	}
	return s, err
}

func (m *Monitor) probeOnce(ctx context.Context, b *backend) (sample, error) {
	if b.conn == nil {
		q, err := m.cfg.Connect(ctx, b.addr)
		if err != nil {
			return sample{}, fmt.Errorf("connecting: %w", err)
		}
		if q == nil {
			return sample{}, errors.New("connecting: Connect returned no connection")
		}
		b.conn = q
	}
	cols, err := b.conn.QueryRow(ctx, probe)
	if err == nil {
		var s sample
		if s, err = parseSample(cols); err == nil {
			return s, nil
		}
	}
	m.closeConn(b)
	return sample{}, err
}

// closeConn drops b's connection; the next poll connects again.
func (m *Monitor) closeConn(b *backend) {
	if b.conn == nil {
		return
	}
	// Closing a broken connection may block on the network; it gets a
	// short deadline of its own, not the poll's, which may have expired.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = b.conn.Close(ctx)
	b.conn = nil
}
