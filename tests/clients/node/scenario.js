// node-postgres scenarios driven by tests/clients/test_node.py:
//   node scenario.js <name> <connection-string>
// Prints one JSON line per observation; an uncaught error prints {"error": code, "message": ...} and exits 1.
// (No query_timeout: pg leaves its timer running for a Cursor, which keeps node alive until it fires;
// the Python side bounds the whole run instead.)
'use strict';
const { Client } = require('pg');

const out = (obj) => console.log(JSON.stringify(obj));

async function withClient(url, fn) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const scenarios = {
  async simple(url) {
    await withClient(url, async (c) => {
      const r = await c.query('SELECT id, name FROM users ORDER BY id');
      out({ rows: r.rows, command: r.command, rowCount: r.rowCount });
    });
  },

  async params(url) {
    await withClient(url, async (c) => {
      const r = await c.query('SELECT id, name FROM users WHERE id = $1 AND name = $2', [7, 'ada']);
      out({ rows: r.rows });
      const ins = await c.query('INSERT INTO orders (id, data) VALUES ($1, $2)', [1, { qty: 2 }]);
      out({ command: ins.command, rowCount: ins.rowCount });
    });
  },

  async named(url) {
    await withClient(url, async (c) => {
      for (let i = 0; i < 3; i++) {
        const r = await c.query({ name: 'named1', text: 'SELECT id, name FROM users WHERE id = $1', values: [i] });
        out({ rows: r.rows });
      }
    });
  },

  async multi(url) {
    await withClient(url, async (c) => {
      const results = await c.query('SELECT 1 AS one; SELECT id, name FROM users ORDER BY id; BEGIN; COMMIT');
      out({ results: results.map((r) => ({ command: r.command, rows: r.rows })) });
    });
  },

  async error(url) {
    await withClient(url, async (c) => {
      try {
        await c.query('SELECT 1/0');
        out({ unexpected: 'no error' });
      } catch (e) {
        out({ error: e.code, message: e.message, severity: e.severity });
      }
      try {
        await c.query('SELECT id FROM users WHERE id = $1', [1]);
        out({ unexpected: 'no error' });
      } catch (e) {
        out({ error: e.code, message: e.message });
      }
      await c.query('BEGIN');
      try { await c.query('SELECT 1/0'); } catch (e) { out({ error: e.code }); }
      try { await c.query('SELECT 1'); } catch (e) { out({ error: e.code }); }
      await c.query('ROLLBACK');
      const r = await c.query('SELECT 1 AS one');
      out({ recovered: r.rows });
    });
  },

  async cursor(url) {
    const Cursor = require('pg-cursor');
    await withClient(url, async (c) => {
      // pg-cursor sends Parse/Bind/Describe/Flush/Execute(max_rows)/Flush without Sync: it needs Flush honoured
      const cursor = c.query(new Cursor('SELECT g FROM series'));
      const batches = [];
      for (;;) {
        const rows = await cursor.read(2);
        if (rows.length === 0) break;
        batches.push(rows.map((r) => r.g));
      }
      await cursor.close();
      out({ batches });
      const r = await c.query('SELECT 1 AS one');
      out({ after: r.rows });
    });
  },

  async notify(url) {
    const listener = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    await listener.connect();
    const got = [];
    const done = new Promise((resolve) => {
      listener.on('notification', (msg) => {
        got.push({ channel: msg.channel, payload: msg.payload });
        if (got.length === 2) resolve();
      });
    });
    await listener.query('LISTEN chan1');
    await withClient(url, async (c) => {
      await c.query("NOTIFY chan1, 'hello'");
      await c.query("SELECT pg_notify('chan1', 'world')");
    });
    const timer = setTimeout(() => { out({ timeout: got }); process.exit(2); }, 10000);
    await done;
    clearTimeout(timer);
    await listener.end();
    out({ notifications: got });
  },

  // Every core type in text (node-postgres reads text only): the SQL comes from FAKEPM_SQL so the
  // Python test holds its one copy; values are printed with their JS type.
  async types(url) {
    await withClient(url, async (c) => {
      const r = await c.query(process.env.FAKEPM_SQL);
      r.fields.forEach((f) => {
        const v = r.rows[0][f.name];
        const shown = v instanceof Date ? `Date:${v.toISOString()}` : Buffer.isBuffer(v) ? `Buffer:${v.toString('hex')}`
          : `${v === null ? 'null' : typeof v}:${JSON.stringify(v)}`;
        out({ column: f.name, oid: f.dataTypeID, value: shown });
      });
    });
  },

  // Client.cancel(client, query) opens a new connection and sends CancelRequest(pid, key).
  // The test's handler blocks until the cancel: the query ends with 57014, the connection goes on.
  async cancel(url) {
    const { Query } = require('pg');
    await withClient(url, async (c) => {
      const query = new Query('SELECT slow()');
      const done = new Promise((resolve) => {
        query.on('error', (e) => resolve({ error: e.code, message: e.message }));
        query.on('end', () => resolve({ unexpected: 'no error' }));
      });
      c.query(query);
      // a cancel that arrives before the statement runs is lost (as in PostgreSQL): repeat until it lands
      let finished = false;
      done.then(() => { finished = true; });
      for (let i = 0; i < 50 && !finished; i++) {
        new Client({ connectionString: url }).cancel(c, query);
        await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 200))]);
      }
      out(await done);
      const r = await c.query('SELECT 1 AS one');
      out({ after: r.rows });
    });
  },

  async connect(url) {
    await withClient(url, async (c) => {
      const r = await c.query('SELECT 1 AS one');
      out({ rows: r.rows });
    });
  },
};

const [name, url] = process.argv.slice(2);
scenarios[name](url).catch((e) => {
  out({ error: e.code || null, message: e.message });
  process.exit(1);
});
