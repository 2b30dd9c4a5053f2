"""psycopg2 through shardproxy.

Run by test/drivers (go test) with Debian's /usr/bin/python3 as
    psycopg2_driver.py URL MODE
where MODE is the proxy's pool mode (transaction or session) or "direct".
It uses what applications use psycopg2 for (client-side parameters,
executemany, execute_batch and execute_values, server-side cursors read with
itersize, COPY both ways, errors and rollbacks, notices, NOTIFY, two-phase
commit, cancel requests, per-connection settings and SQL-level prepared
statements on several connections at once, a clean session for the next
client) and prints one JSON object of what it saw. It checks little itself:
the Go test compares the summary and the tables it leaves (py_items_MODE,
py_copy_MODE) with what PostgreSQL must give.
"""

import datetime
import decimal
import hashlib
import io
import json
import select
import sys
import threading
import time
import types

import psycopg2
import psycopg2.errors
import psycopg2.extras
from psycopg2 import sql


def pgcode(fn):
    """Runs fn and returns the SQLSTATE it raised, "" when it raised none."""
    try:
        fn()
    except psycopg2.Error as e:
        return e.pgcode or "no SQLSTATE: " + str(e)
    return ""


def scalar(conn, query, args=None):
    with conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchone()[0]


def basics(r):
    """Parameters, executemany, execute_batch, execute_values, a rollback."""
    conn, cur, items, out = r.conn, r.cur, r.items, r.out
    # Client-side interpolation of every kind of parameter psycopg2 adapts,
    # read back in the same transaction.
    at = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=datetime.timezone.utc)
    row = (1, "O'Reilly \\ \"quoted\" ; -- not a comment", decimal.Decimal("1234.56"),
           ["a", "b,c", None], {"k": [1, 2, {"n": None}]}, at)
    cur.execute(sql.SQL("insert into {} values (%s, %s, %s, %s, %s, %s)").format(items),
                row[:4] + (psycopg2.extras.Json(row[4]), row[5]))
    cur.execute(sql.SQL("select id, name, amount, tags, doc, at from {} where id = %(id)s").format(items),
                {"id": 1})
    got = cur.fetchone()
    out["roundtrip_equal"] = got == row
    out["roundtrip_row"] = repr(got)
    conn.commit()

    # executemany (one statement per row) and execute_values (batched).
    cur.executemany(sql.SQL("insert into {} (id, name, amount) values (%s, %s, %s)").format(items),
                    [(i, "many %d" % i, decimal.Decimal(i) / 4) for i in range(2, 202)])
    out["executemany_rowcount"] = cur.rowcount
    # execute_batch joins page_size statements into one multi-statement
    # query.
    psycopg2.extras.execute_batch(
        cur, sql.SQL("update {} set amount = amount * 2 where id = %s").format(items),
        [(i,) for i in range(2, 202)], page_size=64)
    psycopg2.extras.execute_values(
        cur, sql.SQL("insert into {} (id, name, amount) values %s").format(items).as_string(conn),
        [(i, "values %d" % i, i) for i in range(1000, 2000)], page_size=250)
    conn.commit()

    # A rolled-back transaction leaves nothing behind.
    cur.execute(sql.SQL("insert into {} (id, name) values (%s, %s)").format(items), (5000, "rolled back"))
    cur.execute(sql.SQL("update {} set name = 'changed' where id = 1").format(items))
    out["count_before_rollback"] = scalar(conn, sql.SQL("select count(*) from {}").format(items))
    conn.rollback()
    out["count_after_rollback"] = scalar(conn, sql.SQL("select count(*) from {}").format(items))
    out["name_after_rollback"] = scalar(conn, sql.SQL("select name from {} where id = 1").format(items))
    conn.commit()


def cursors(r):
    """Named (server-side) cursors, WITHOUT HOLD and WITH HOLD."""
    conn, items, out = r.conn, r.items, r.out
    # Server-side cursors: DECLARE, then FETCH FORWARD itersize at a time,
    # inside the transaction psycopg2 began; two of them interleaved.
    with conn.cursor(name="c") as c:
        c.itersize = 37
        c.execute(sql.SQL("select id, amount from {} order by id").format(items))
        n, ids = 0, 0
        for row in c:
            n += 1
            ids += row[0]
        out["named_cursor_rows"], out["named_cursor_id_sum"] = n, ids
    with conn.cursor(name="c1") as c1, conn.cursor(name="c2") as c2:
        c1.execute("select g from generate_series(1, 100) g")
        c2.execute("select -g from generate_series(1, 100) g")
        seen = []
        while True:
            a, b = c1.fetchmany(7), c2.fetchmany(11)
            if not a and not b:
                break
            seen.extend(x for (x,) in a + b)
        out["interleaved_cursor_rows"], out["interleaved_cursor_sum"] = len(seen), sum(seen)
        out["open_cursors"] = scalar(conn, "select count(*) from pg_cursors where name in ('c1', 'c2')")
    conn.commit()
    # WITH HOLD outlives the transaction, so it needs a session of its own.
    def hold():
        with conn.cursor(name="h", withhold=True) as h:
            h.execute("select g from generate_series(1, 10) g")
            conn.commit()
            out["withhold_rows"] = len(h.fetchall())
    out["withhold_code"] = pgcode(hold)
    conn.rollback()


def copy_both_ways(r):
    """copy_expert in and out, and a COPY that fails half way."""
    conn, cur, copies, out = r.conn, r.cur, r.copies, r.out
    # COPY both ways with text that needs CSV quoting.
    cur.execute(sql.SQL("create table {} (id int primary key, name text, note text)").format(copies))
    conn.commit()
    src = io.StringIO()
    for i in range(3000):
        note = "" if i % 5 == 0 else '"line, %d\nwith ""quotes"" and \\"' % i
        src.write('%d,name %d,%s\n' % (i, i, note))
    sent = src.getvalue()
    src.seek(0)
    cur.copy_expert(sql.SQL("copy {} from stdin with (format csv)").format(copies), src)
    out["copy_in_rowcount"] = cur.rowcount
    conn.commit()
    dst = io.StringIO()
    cur.copy_expert(sql.SQL("copy (select * from {} order by id) to stdout with (format csv)").format(copies), dst)
    out["copy_out_rowcount"] = cur.rowcount
    out["copy_roundtrip_equal"] = dst.getvalue() == sent
    out["copy_sha256"] = hashlib.sha256(sent.encode()).hexdigest()
    conn.commit()
    # A COPY that fails half way, then the connection is used again.
    bad = io.StringIO("9001,ok,\nnot-a-number,bad,\n")
    out["copy_bad_code"] = pgcode(lambda: cur.copy_expert(
        sql.SQL("copy {} from stdin with (format csv)").format(copies), bad))
    conn.rollback()
    out["copy_rows_after_bad"] = scalar(conn, sql.SQL("select count(*) from {}").format(copies))
    conn.commit()


def errors_and_notices(r):
    """An error and recovery, a notice, a large parameter, NOTIFY."""
    mode, conn, cur, out = r.mode, r.conn, r.cur, r.out
    # An error aborts the transaction; ROLLBACK recovers it.
    out["div_zero_code"] = pgcode(lambda: cur.execute("select 1 / 0"))
    out["aborted_code"] = pgcode(lambda: cur.execute("select 1"))
    conn.rollback()
    out["after_error"] = scalar(conn, "select 41 + 1")
    conn.commit()

    # A notice reaches the client; a parameter of 2 MB goes through whole.
    cur.execute("do $$ begin raise notice 'hello %', 6 * 7; end $$")
    out["notices"] = [n.strip() for n in conn.notices]
    big = "x" * (2 << 20) + "y"
    out["big_param_length"] = scalar(conn, "select length(%s)", (big,))
    conn.commit()

    # NOTIFY inside a transaction is delivered at COMMIT (the Go test
    # listens on a direct connection).
    cur.execute("notify drivers_py, %s", ("from psycopg2 " + mode,))
    cur.execute("select pg_notify('drivers_py', %s)", ("pg_notify " + mode,))
    conn.commit()


def two_phase_commit(r):
    """tpc_begin, tpc_prepare, tpc_commit and tpc_rollback."""
    url, mode, conn, cur, items, out = r.url, r.mode, r.conn, r.cur, r.items, r.out
    # Two-phase commit: PREPARE TRANSACTION, seen from another connection,
    # then COMMIT PREPARED; and one ended by ROLLBACK PREPARED.
    insert = sql.SQL("insert into {} (id, name) values (%s, %s)").format(items)
    tpc = []
    for gid, row_id in (("drivers-tpc-commit-" + mode, 7000), ("drivers-tpc-rollback-" + mode, 7001)):
        conn.tpc_begin(gid)
        cur.execute(insert, (row_id, gid))
        conn.tpc_prepare()
        other = psycopg2.connect(url, connect_timeout=10)
        tpc.append([x.gtrid for x in other.tpc_recover()].count(gid))
        other.close()
        if row_id == 7000:
            conn.tpc_commit()
        else:
            conn.tpc_rollback()
    tpc.append(scalar(conn, sql.SQL("select array_agg(id) from {} where id >= 7000").format(items)))
    conn.commit()
    out["tpc"] = tpc


def many_connections(r):
    """Four connections in autocommit, each with settings of its own."""
    url, conn, items, out = r.url, r.conn, r.items, r.out
    # Settings made with SET and by set_session stay with their connection
    # while three others, each with settings of its own, run statements in
    # between (in transaction pooling the four share two server
    # connections).
    conns = [conn] + [psycopg2.connect(url, connect_timeout=10) for _ in range(3)]
    for i, cn in enumerate(conns):
        cn.autocommit = True
        with cn.cursor() as cc:
            cc.execute("set application_name = %s", ("py-%d" % i,))
            cc.execute("set timezone = %s", (["UTC", "Asia/Tokyo", "America/New_York", "Europe/Paris"][i],))
    conns[1].set_session(isolation_level="REPEATABLE READ", readonly=True)
    # SQL-level prepared statements of one name and different text per
    # connection.
    for i, cn in enumerate(conns):
        cn.cursor().execute("prepare q(int) as select $1 * %d" % (i + 2))
    mismatches = []
    for _ in range(10):
        for i, cn in enumerate(conns):
            got = scalar(cn, "execute q(%s)", (10,))
            if got != 10 * (i + 2):
                mismatches.append("conn %d: execute q(10) = %r, want %r" % (i, got, 10 * (i + 2)))
        for i, cn in enumerate(conns):
            got = (scalar(cn, "show application_name"), scalar(cn, "show timezone"),
                   scalar(cn, "show transaction_isolation"), scalar(cn, "show transaction_read_only"))
            want = ("py-%d" % i, ["UTC", "Asia/Tokyo", "America/New_York", "Europe/Paris"][i],
                    "repeatable read" if i == 1 else "read committed", "on" if i == 1 else "off")
            if got != want:
                mismatches.append("conn %d: %r, want %r" % (i, got, want))
    out["settings_mismatches"] = mismatches[:5]
    out["readonly_write_code"] = pgcode(lambda: conns[1].cursor().execute(
        sql.SQL("insert into {} (id, name) values (6000, 'x')").format(items)))
    # SET LOCAL lasts until the end of its transaction.
    with conns[0].cursor() as cc:
        cc.execute("begin")
        cc.execute("set local timezone = 'Asia/Kolkata'")
        cc.execute("show timezone")
        local = cc.fetchone()[0]
        cc.execute("commit")
        out["set_local_timezone"] = [local, scalar(conns[0], "show timezone")]

    # A cancel request (libpq's PQcancel, with the key the proxy gave)
    # stops a running statement; the connection stays usable.
    result = {}

    def sleeper():
        result["code"] = pgcode(lambda: conns[2].cursor().execute("select pg_sleep(20) /* drivers cancel */"))
    th = threading.Thread(target=sleeper)
    th.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not scalar(conns[3], "select count(*) from pg_stat_activity where state = 'active'"
                                                     " and query like '%drivers cancel */'"
                                                     " and pid <> pg_backend_pid()"):
        time.sleep(0.01)
    start = time.monotonic()
    conns[2].cancel()
    th.join(10)
    out["cancel_code"] = result.get("code", "still running")
    out["cancel_fast"] = time.monotonic() - start < 2
    out["after_cancel"] = scalar(conns[2], "select 'usable'")

    # LISTEN needs a session of its own; in session pooling a notification
    # from another connection arrives.
    out["listen_code"] = pgcode(lambda: conns[2].cursor().execute("listen drivers_py_self"))
    if out["listen_code"] == "":
        conns[3].cursor().execute("notify drivers_py_self, 'hello'")
        deadline = time.monotonic() + 10
        while not conns[2].notifies and time.monotonic() < deadline:
            select.select([conns[2]], [], [], 0.5)
            conns[2].poll()
        out["listen_payloads"] = [n.payload for n in conns[2].notifies]
    for cn in conns:
        cn.close()


def session_reuse(r):
    """What a client leaves in its session is gone for the next client."""
    url, out = r.url, r.out
    # What a client leaves in its session goes with it: a client that comes
    # after it on the same server connection starts clean. Session-only
    # constructs are refused in transaction pooling, and PostgreSQL gives
    # each new connection a new backend, so there all is clean trivially.
    a = psycopg2.connect(url, connect_timeout=10)
    a.autocommit = True
    pid = scalar(a, "select pg_backend_pid()")
    for stmt in ["set application_name = 'dirty'", "set statement_timeout = '1234s'",
                 "prepare leftover as select 1", "create temp table leftover_tmp (x int)",
                 "listen leftover_channel", "select pg_advisory_lock(4242)",
                 "declare leftover_cur cursor with hold for select 1"]:
        pgcode(lambda: a.cursor().execute(stmt))
    a.close()
    b = psycopg2.connect(url, connect_timeout=10)
    b.autocommit = True
    out["reuse_same_backend"] = scalar(b, "select pg_backend_pid()") == pid
    out["reuse_state"] = {
        "application_name": scalar(b, "show application_name"),
        "statement_timeout": scalar(b, "show statement_timeout"),
        "execute_prepared": pgcode(lambda: b.cursor().execute("execute leftover")),
        "temp_table": scalar(b, "select to_regclass('leftover_tmp') is not null"),
        "listening": scalar(b, "select count(*) from pg_listening_channels()"),
        "advisory_locks": scalar(b, "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"),
        "cursors": scalar(b, "select count(*) from pg_cursors"),
    }
    b.close()


def main():
    url, mode = sys.argv[1], sys.argv[2]
    out = {"psycopg2": psycopg2.__version__.split()[0], "libpq": psycopg2.__libpq_version__}
    conn = psycopg2.connect(url, connect_timeout=10, application_name="drivers-psycopg2")
    out["server_version"] = conn.server_version
    r = types.SimpleNamespace(url=url, mode=mode, conn=conn, cur=conn.cursor(), out=out,
                              items=sql.Identifier("py_items_" + mode), copies=sql.Identifier("py_copy_" + mode))
    r.cur.execute(sql.SQL(
        "create table {} (id int primary key, name text not null, amount numeric(12,2),"
        " tags text[], doc jsonb, at timestamptz)").format(r.items))
    conn.commit()
    for section in (basics, cursors, copy_both_ways, errors_and_notices, two_phase_commit,
                    many_connections, session_reuse):
        section(r)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
