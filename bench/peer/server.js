// The benchmark's Node peer: `GET /api/v1/me` and `GET /api/v1/sessions/list`
// as a small Express + pg service would write them, against sessiond's own
// schema and tokens, so bench/run.py can put sessiond's throughput next to
// it. Cluster mode, one worker per core; each worker has its own pool.
//
//   DATABASE_URL=postgres://... PORT=8080 node bench/peer/server.js
//
// PEER_POOL_SIZE is the connections across all workers (default 16, as
// sessiond's pool). It serves GET /healthz for readiness.
//
// What it does as sessiond does: authenticates with X-User-Id (the user's
// guid) and X-Auth-Token (the raw token; sessions.token_hash holds its
// SHA-256 in standard base64), joining sessions and users on the same
// conditions (the user is active, the session has no logout_at and has not
// expired); `list` then runs the same count and page statements on the same
// connection and answers the same JSON shape. Every statement is prepared
// once per connection, as diesel's statement cache does. What it leaves out:
// the activity write (sessiond updates last_activity_at at most once per
// session per activity interval), filters, sorts other than the default,
// and cursors (it lists by offset; nextCursor is an unsealed marker when
// more rows follow).

import cluster from "node:cluster";
import { createHash } from "node:crypto";
import os from "node:os";
import process from "node:process";

const TIMESTAMP_OID = 1114;
const DEFAULT_COUNT = 50;
const MAX_COUNT = 100;

// sessiond's authentication statement (store::sessions::authenticate).
const AUTH_SQL = `SELECT "sessions"."id", "sessions"."session_id", "sessions"."user_id", "sessions"."token_hash", "sessions"."token_hint", "sessions"."description", "sessions"."device_type", "sessions"."device_name", "sessions"."device_version", "sessions"."device_long_version", "sessions"."os_name", "sessions"."os_version", "sessions"."device_category", "sessions"."ip", "sessions"."host", "sessions"."instance_id", "sessions"."login_at", "sessions"."last_activity_at", "sessions"."expires_at", "sessions"."idle_timeout_seconds", "sessions"."permanent", "sessions"."logout_at", "sessions"."logout_by", "sessions"."two_factor_until", "sessions"."search_term", "sessions"."api_defaults", "sessions"."updated_at", "sessions"."device_key", "sessions"."new_device", "users"."id" AS "u_id", "users"."guid", "users"."username", "users"."name", "users"."password_hash", "users"."roles", "users"."active", "users"."totp_secret", "users"."totp_enabled", "users"."totp_last_step", "users"."created_at", "users"."updated_at" AS "u_updated_at" FROM ("sessions" INNER JOIN "users" ON ("sessions"."user_id" = "users"."id")) WHERE ((((("sessions"."token_hash" = $1) AND ("users"."guid" = $2)) AND ("users"."active" = $3)) AND ("sessions"."logout_at" IS NULL)) AND ("sessions"."expires_at" > $4)) LIMIT $5`;

// The count and the page of store::sessions::page for one user's list.
const COUNT_SQL = `SELECT COUNT(*) FROM "sessions" WHERE ((("sessions"."logout_at" IS NULL) AND ("sessions"."expires_at" > $1)) AND ("sessions"."user_id" = $2)) LIMIT $3`;
const PAGE_SQL = `SELECT "sessions"."id", "sessions"."session_id", "sessions"."device_type", "sessions"."device_name", "sessions"."device_version", "sessions"."device_long_version", "sessions"."os_name", "sessions"."os_version", "sessions"."ip", "sessions"."host", "sessions"."login_at", "sessions"."new_device", "users"."guid", "users"."username", "users"."name" FROM ("sessions" INNER JOIN "users" ON ("sessions"."user_id" = "users"."id")) WHERE ((("sessions"."logout_at" IS NULL) AND ("sessions"."expires_at" > $1)) AND ("sessions"."user_id" = $2)) ORDER BY "sessions"."login_at" DESC, "sessions"."id" DESC LIMIT $3 OFFSET $4`;

const NOT_LOGGED_IN = { status: "error", message: "You must be logged in to do this." };

const port = Number(process.env.PORT || 8080);
const workers = Number(process.env.PEER_WORKERS || os.availableParallelism());

if (cluster.isPrimary) {
  let shuttingDown = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on("exit", (worker, code, signal) => {
    if (!shuttingDown) {
      console.error(`peer worker ${worker.process.pid} exited (${signal || code})`);
      process.exit(1);
    }
  });
  const stop = () => {
    shuttingDown = true;
    for (const worker of Object.values(cluster.workers)) worker.kill("SIGTERM");
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  const { default: express } = await import("express");
  const { default: pg } = await import("pg");

  // Timestamps stay as Postgres writes them ("2026-11-24 10:00:00.123456"):
  // the columns are UTC without a zone, and a Date would read them as local.
  pg.types.setTypeParser(TIMESTAMP_OID, (text) => text);

  const poolSize = Math.max(1, Math.floor(Number(process.env.PEER_POOL_SIZE || 16) / workers));
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: poolSize });

  // "2026-11-24 10:00:00.123456" -> "2026-11-24T10:00:00.123Z", as iso_millis.
  const isoMillis = (text) => {
    const [date, time] = text.split(" ");
    const [hms, fraction = ""] = time.split(".");
    return `${date}T${hms}.${(fraction + "000").slice(0, 3)}Z`;
  };
  // sessiond binds now as a timestamp without zone, in UTC.
  const now = () => new Date().toISOString().slice(0, 23);
  const tokenHash = (token) => createHash("sha256").update(token).digest("base64");

  const credentials = (req) => {
    const userId = req.get("x-user-id");
    const token = req.get("x-auth-token");
    if (!userId || userId.length > 64 || !token || token.length > 256 || !/^[\x21-\x7e]+$/.test(token)) {
      return null;
    }
    return { userId, hash: tokenHash(token) };
  };

  const authenticate = async (client, { userId, hash }, at) => {
    const { rows } = await client.query({ name: "auth", text: AUTH_SQL, values: [hash, userId, true, at, 1] });
    return rows[0] || null;
  };

  const whole = (raw, fallback) => {
    if (raw === undefined) return fallback;
    return /^\d+$/.test(raw) ? Number(raw) : NaN;
  };

  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");

  app.get("/healthz", (_req, res) => res.json({ status: "ok" }));

  app.get("/api/v1/me", async (req, res, next) => {
    try {
      const found = credentials(req);
      if (!found) return res.status(401).json(NOT_LOGGED_IN);
      const row = await authenticate(pool, found, now());
      if (!row) return res.status(401).json(NOT_LOGGED_IN);
      res.json({
        _id: row.guid,
        username: row.username,
        name: row.name,
        active: row.active,
        roles: row.roles.split(",").filter(Boolean),
        services: { totp: { enabled: row.totp_enabled } },
        createdAt: isoMillis(row.created_at),
        _updatedAt: isoMillis(row.u_updated_at),
        success: true,
      });
    } catch (err) {
      next(err);
    }
  });

  app.get("/api/v1/sessions/list", async (req, res, next) => {
    const found = credentials(req);
    if (!found) return res.status(401).json(NOT_LOGGED_IN);
    let offset = whole(req.query.offset, 0);
    let count = whole(req.query.count, DEFAULT_COUNT);
    if (Number.isNaN(offset) || Number.isNaN(count)) {
      return res.status(400).json({ success: false, error: "offset and count must be whole numbers" });
    }
    count = count === 0 ? DEFAULT_COUNT : Math.min(count, MAX_COUNT);
    let client;
    try {
      client = await pool.connect();
      const at = now();
      const caller = await authenticate(client, found, at);
      if (!caller) return res.status(401).json(NOT_LOGGED_IN);
      const total = await client.query({ name: "count", text: COUNT_SQL, values: [at, caller.user_id, 1] });
      const page = await client.query({
        name: "page",
        text: PAGE_SQL,
        values: [at, caller.user_id, count + 1, offset],
      });
      const more = page.rows.length > count;
      const rows = more ? page.rows.slice(0, count) : page.rows;
      res.json({
        sessions: rows.map((s) => ({
          sessionId: s.session_id,
          userId: s.guid,
          device: {
            type: s.device_type,
            name: s.device_name,
            longVersion: s.device_long_version,
            os: { name: s.os_name, version: s.os_version },
            version: s.device_version,
          },
          host: s.host,
          ip: s.ip,
          loginAt: isoMillis(s.login_at),
          newDevice: s.new_device,
          _id: s.session_id,
          current: s.id === caller.id,
        })),
        total: Number(total.rows[0].count),
        count,
        offset,
        nextCursor: more ? Buffer.from(JSON.stringify({ offset: offset + count })).toString("base64url") : null,
        success: true,
      });
    } catch (err) {
      next(err);
    } finally {
      if (client) client.release();
    }
  });

  app.use((err, _req, res, _next) => {
    console.error(err);
    res.status(503).json({ success: false, error: "store unavailable" });
  });

  const server = app.listen(port, "127.0.0.1");
  server.keepAliveTimeout = 75_000;
  process.on("SIGTERM", () => server.close(() => pool.end().finally(() => process.exit(0))));
}
