// node-postgres driving fakepm's control API: add a rule and a fault over HTTP, run `pg`, verify.
//   node admin.js DSN ADMIN_URL
// One line per observation (tests/admin/test_languages.py compares them).
const http = require("http");
const { Client } = require("pg");

const [dsn, admin] = process.argv.slice(2);

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(admin + path, {
      method,
      headers: { "Content-Type": "application/json", ...(data ? { "Content-Length": data.length } : {}) },
    }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve([res.statusCode, text ? JSON.parse(text) : null]));
    });
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

(async () => {
  await call("POST", "/reset", {});
  let [status] = await call("POST", "/rules", {
    query: "SELECT name FROM users WHERE id = $1", params: [7], param_types: ["int4"],
    columns: { name: "text" }, rows: [["ada"]], expect: 1, name: "node user",
  });
  console.log("rule", status);
  [status] = await call("POST", "/faults", { error: "40001", query: "COMMIT", first: 1 });
  console.log("fault", status);

  const client = new Client({ connectionString: dsn });
  await client.connect();
  const res = await client.query("SELECT name FROM users WHERE id = $1", [7]);
  console.log("row", res.rows[0].name);
  await client.query("BEGIN");
  try {
    await client.query("COMMIT");
    console.log("commit ok");
  } catch (e) {
    console.log("commit", e.code);
  }
  await client.end();

  const [vstatus, body] = await call("POST", "/verify");
  console.log("verify", vstatus, body.ok);
  const [, journal] = await call("GET", "/queries");
  for (const q of journal.queries) {
    if (q.sql === "SELECT name FROM users WHERE id = $1") {
      console.log("journal", JSON.stringify(q.params), q.answered_by, q.rule_source);
    }
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
