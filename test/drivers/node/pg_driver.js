// node-postgres (pg) through shardproxy.
//
// Run by test/drivers (go test) with the machine's node as
//     node pg_driver.js URL MODE
// where MODE is the proxy's pool mode or "direct". Parameterized queries go
// out on the extended protocol as unnamed statements, {name, text, values}
// queries as named prepared statements that each connection parses once
// and then reuses; a pg.Pool of 4 runs them from 8 concurrent workers next
// to two more clients with other startup parameters, so in transaction
// pooling six clients share the proxy's two server connections. It also
// runs transactions that commit, roll back and fail half way, drops a
// connection inside a transaction, changes a prepared statement's result
// type with ALTER TABLE, and prints one JSON object of what it saw; the Go
// test checks it and the table it leaves (js_items_MODE).
'use strict';

const pg = require('pg');

const [url, mode] = process.argv.slice(2);
const table = `js_items_${mode}`;

// code runs fn and returns the SQLSTATE it failed with, '' when it did not.
async function code(fn) {
  try {
    await fn();
    return '';
  } catch (e) {
    return e.code || `no SQLSTATE: ${e.message}`;
  }
}

async function main() {
  const out = { pg: require('pg/package.json').version, node: process.version };
  // Startup parameters of the pool's clients, which the shapers below
  // do not share.
  const pool = new pg.Pool({
    connectionString: url, max: 4, connectionTimeoutMillis: 10000,
    application_name: 'drivers-pg', statement_timeout: 5000, options: '-c search_path=public,pg_catalog',
  });
  pool.on('error', () => {}); // an idle client's error surfaces on its next use

  await pool.query(`create table ${table} (id int primary key, worker int not null, n int not null,
    label text, amount numeric(10,2), big int8, doc jsonb, tags text[], raw bytea, at timestamptz)`);

  // Types through the extended protocol, unnamed statement.
  const at = new Date(Date.UTC(2024, 1, 29, 23, 59, 58, 123));
  const row = [0, -1, 0, "it's \\ \"x\"", '1234.50', '9007199254740993', { a: [1, null] }, ['p', 'q,r', null], Buffer.from([0, 1, 254, 255]), at];
  await pool.query(`insert into ${table} values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, row);
  const back = (await pool.query(`select * from ${table} where id = $1`, [0])).rows[0];
  out.types = {
    label: back.label === row[3],
    amount: back.amount === row[4],
    big: back.big === row[5],
    doc: JSON.stringify(back.doc) === JSON.stringify(row[6]),
    tags: JSON.stringify(back.tags) === JSON.stringify(row[7]),
    raw: Buffer.compare(back.raw, row[8]) === 0,
    at: back.at.getTime() === at.getTime(),
  };

  // Eight workers insert and read back through named statements, shared
  // by text across the pool's clients; meanwhile two clients of their own
  // use one statement name for different text.
  const workers = 8, perWorker = 40;
  let namedReads = 0;
  const shapeMismatches = [], settingMismatches = [];
  const settings = async (q, who, want) => {
    const r = await q({ name: 'settings', text: "select current_setting('application_name') as a, current_setting('statement_timeout') as t, current_setting('search_path') as p", values: [] });
    const got = [r.rows[0].a, r.rows[0].t, r.rows[0].p];
    if (JSON.stringify(got) !== JSON.stringify(want)) settingMismatches.push(`${who}: ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  const shapers = [0, 1].map((k) => new pg.Client({ connectionString: url, application_name: `shaper-${k}` }));
  await Promise.all(shapers.map((c) => c.connect()));
  await Promise.all([
    ...Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < perWorker; i++) {
        const id = 1 + w * perWorker + i;
        await pool.query({ name: 'ins', text: `insert into ${table} (id, worker, n, label) values ($1, $2, $3, $4)`, values: [id, w, i, `w${w}`] });
        const r = await pool.query({ name: 'get', text: `select worker, n from ${table} where id = $1`, values: [id] });
        if (r.rows.length === 1 && r.rows[0].worker === w && r.rows[0].n === i) namedReads++;
        if (i % 10 === 0) await settings((q) => pool.query(q), `worker ${w}`, ['drivers-pg', '5s', 'public,pg_catalog']);
      }
    }),
    ...shapers.map(async (c, k) => {
      for (let i = 0; i < perWorker; i++) {
        const r = k === 0
          ? await c.query({ name: 'shape', text: 'select $1::int + 1 as v', values: [i] })
          : await c.query({ name: 'shape', text: "select $1::text || '!' as v", values: [`s${i}`] });
        const want = k === 0 ? i + 1 : `s${i}!`;
        if (r.rows[0].v !== want) shapeMismatches.push(`client ${k}: ${JSON.stringify(r.rows[0].v)}, want ${JSON.stringify(want)}`);
        if (i % 10 === 0) await settings((q) => c.query(q), `shaper ${k}`, [`shaper-${k}`, '0', '"$user", public']);
      }
    }),
  ]);
  await Promise.all(shapers.map((c) => c.end()));
  out.named_reads = namedReads;
  out.shape_mismatches = shapeMismatches.slice(0, 5);
  out.setting_mismatches = settingMismatches.slice(0, 5);

  // Transactions on checked-out clients, run while other workers keep
  // the pool busy.
  const tx = async (body) => {
    const client = await pool.connect();
    try {
      return await body(client);
    } finally {
      client.release();
    }
  };
  const [committed, rolledBack, failed] = await Promise.all([
    tx(async (c) => {
      await c.query('BEGIN');
      for (let i = 0; i < 20; i++) {
        await c.query({ name: 'ins', text: `insert into ${table} (id, worker, n, label) values ($1, $2, $3, $4)`, values: [1000 + i, 100, i, 'committed'] });
      }
      const inside = (await c.query(`select count(*)::int as n from ${table} where worker = 100`)).rows[0].n;
      await c.query('COMMIT');
      return inside;
    }),
    tx(async (c) => {
      await c.query('BEGIN');
      await c.query(`insert into ${table} (id, worker, n) values ($1, $2, $3)`, [2000, 200, 0]);
      await c.query(`update ${table} set label = 'changed' where worker = 0`);
      await c.query('ROLLBACK');
      return (await c.query(`select count(*)::int as n from ${table} where worker = 200 or label = 'changed'`)).rows[0].n;
    }),
    tx(async (c) => {
      await c.query('BEGIN');
      await c.query(`insert into ${table} (id, worker, n) values ($1, $2, $3)`, [3000, 300, 0]);
      const dup = await code(() => c.query(`insert into ${table} (id, worker, n) values ($1, $2, $3)`, [3000, 300, 1]));
      const aborted = await code(() => c.query({ name: 'get', text: `select worker, n from ${table} where id = $1`, values: [3000] }));
      const status = await code(() => c.query('ROLLBACK'));
      const after = (await c.query({ name: 'get', text: `select worker, n from ${table} where id = $1`, values: [1] })).rows[0];
      return { dup, aborted, rollback: status, after_worker: after.worker };
    }),
    Promise.all(Array.from({ length: 4 }, async (_, k) => {
      for (let i = 0; i < 20; i++) await pool.query('select $1::int * 2 as v', [k * i]);
    })),
  ]);
  out.tx_commit_inside = committed;
  out.tx_rollback_left = rolledBack;
  out.tx_error = failed;

  // Simple protocol: a query without values, several statements in one.
  const multi = await pool.query('select 1 as a; select 2 as b');
  out.multi_statement = multi.map((r) => r.rows[0]);
  out.div_zero_code = await code(() => pool.query('select 1 / $1::int', [0]));
  out.syntax_error_code = await code(() => pool.query({ name: 'broken', text: 'selec 1', values: [] }));
  out.after_errors = (await pool.query({ name: 'get', text: `select worker, n from ${table} where id = $1`, values: [2] })).rows[0];

  // A client whose connection drops inside a transaction: its work is
  // rolled back, and the server connection it had serves others cleanly.
  out.abandoned = await (async () => {
    const c = await pool.connect();
    await c.query('BEGIN');
    await c.query(`insert into ${table} (id, worker, n) values ($1, $2, $3)`, [4000, 400, 0]);
    await c.query("set local statement_timeout = '77s'");
    c.on('error', () => {}); // "Connection terminated unexpectedly", as meant
    const closed = new Promise((resolve) => c.connection.stream.once('close', resolve));
    c.connection.stream.destroy();
    await closed;
    c.release(new Error('dropped on purpose'));
    const seen = await Promise.all(Array.from({ length: 8 }, () => pool.query(
      `select count(*)::int as n, current_setting('statement_timeout') as t, pg_current_xact_id_if_assigned() is null as fresh from ${table} where worker = 400`)));
    return seen.map((r) => r.rows[0]).find((r) => r.n !== 0 || r.t !== '5s' || !r.fresh) || 'clean';
  })();

  // A named statement whose result type a later ALTER TABLE changed fails
  // as in PostgreSQL ("cached plan must not change result type"), on a
  // client of its own that is discarded afterwards.
  out.changed_result_type = await (async () => {
    const c = await pool.connect();
    const star = { name: 'star', text: `select * from ${table} where id = $1`, values: [1] };
    try {
      const before = (await c.query(star)).fields.length;
      await pool.query(`alter table ${table} add column extra int default 7`);
      const after = await code(() => c.query(star));
      const fresh = (await pool.query(`select * from ${table} where id = $1`, [1])).fields.length;
      return { before, after, fresh };
    } finally {
      c.release(true);
    }
  })();

  // NOTIFY reaches a direct listener of the Go test; LISTEN needs a
  // session of its own and works only in session pooling.
  await pool.query("select pg_notify('drivers_js', $1)", [`from pg ${mode}`]);
  out.listen = await tx(async (c) => {
    const got = [];
    c.on('notification', (m) => got.push(m.payload));
    const listenCode = await code(() => c.query('LISTEN drivers_js_self'));
    if (listenCode !== '') return { code: listenCode };
    await pool.query("NOTIFY drivers_js_self, 'hello'");
    const deadline = Date.now() + 10000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await c.query('UNLISTEN *');
    return { code: '', payloads: got };
  });

  await pool.end();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  if (e && e.code) console.error(`SQLSTATE ${e.code}`);
  process.exit(1);
});
