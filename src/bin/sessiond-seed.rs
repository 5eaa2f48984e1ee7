//! Fills a store with users and sessions for the benchmark: a realistic mix
//! of devices, user agents and login times, inserted in bulk (one argon2
//! hash shared by every ordinary seeded user). Idempotent: it tops the store
//! up to the requested sizes and replaces only the two sessions it hands out.
//!
//! It only seeds a store that holds nothing but its own data (see
//! `foreign_data`), gives `bench-admin` a random or supplied password, bounds
//! the admin session's second-factor window, and writes the tokens file
//! readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use sessiond::config::{DatabaseUrl, Settings};
use sessiond::db::schema::{sessions, users};
use sessiond::db::{self, AnyConnection};
use sessiond::domain::clock;
use sessiond::domain::device::Device;
use sessiond::domain::password;
use sessiond::domain::token::{AuthToken, SESSION_ID_ALPHABET};
use sessiond::store::sessions::bulk;
use sessiond::store::sessions::NewSession;
use sessiond::store::settings as server_settings;
use sessiond::store::users::NewUser;

/// Seed a sessiond store for benchmarking.
#[derive(Parser)]
#[command(name = "sessiond-seed", long_about = LONG_ABOUT)]
struct Args {
    /// The store to fill.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://sessiond.db",
        hide_env_values = true
    )]
    database_url: DatabaseUrl,
    /// Seeded users (besides the known user and the admin).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Seeded sessions spread over those users.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: usize,
    /// Sessions of the known user `bench-known`, all fresh on every run.
    #[arg(long, default_value_t = 50)]
    known_sessions: usize,
    /// Where to write the tokens and passwords the load scripts use (JSON,
    /// mode 0600; missing directories are created).
    #[arg(long, default_value = "bench/results/tmp/tokens.json")]
    tokens_out: PathBuf,
    /// Seed a store that holds data sessiond-seed did not create (users
    /// other than its own, or another application's tables). Without it such
    /// a store is refused.
    #[arg(long)]
    allow_existing_data: bool,
    /// The password of `bench-admin` (`-` reads one line from standard
    /// input). Without it, a random password is generated on every run and
    /// recorded only in the tokens file.
    #[arg(long, value_name = "PASSWORD")]
    admin_password: Option<String>,
    /// How long the seeded admin session counts as past the second factor,
    /// in minutes (1 to 1440).
    #[arg(long, value_name = "MINUTES", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=MAX_ADMIN_2FA_MINUTES as i64))]
    admin_2fa_minutes: u32,
}

const LONG_ABOUT: &str = "\
Seed a sessiond store for benchmarking: seeded users (bench-user-NNNNN), the
known user bench-known with fresh sessions, and the administrator bench-admin
with one fresh session past the second factor. Idempotent: it tops the store up
to the requested sizes and reissues only the sessions whose tokens it hands out.

It refuses a store that holds data it did not seed: any user other than its own
(bench-user-NNNNN, bench-known, bench-admin), users in a store it never marked
as seeded, or, where sessiond's tables are missing, another application's
tables. It then exits with status 1 and one line saying what it found, before
migrating or writing anything. --allow-existing-data overrides the check.
`sessiond serve` creates the user admin on an empty store, so seed a new store
before serving it.

Passwords: bench-admin gets the password given with --admin-password (`-` reads
it from standard input); otherwise a random one, generated on every run and
recorded only in the tokens file (admin.password), never printed. The ordinary
seeded users and bench-known share one password, also random and replaced on
every run, recorded in the tokens file as known.password: one argon2 hash keeps
seeding fast, and the store has been checked to hold only seed data. No
password is fixed or known in advance.

The admin session is past the second factor for --admin-2fa-minutes (default
60, at most 1440) from the end of the run, never longer; after that the 2FA
routes refuse it (bench-admin has no TOTP): run the seeder again for a fresh
one.

The tokens file is written with mode 0600: a new file is created with that
mode and renamed over the old one, so an existing file ends up 0600 too (and
nothing new can be read through a handle opened on the old one). The tokens an
earlier run wrote stop working: their sessions are replaced. Missing parent
directories are created.";

const SEED_MARK: &str = "seeded_by";
const SEED_MARK_VALUE: &str = "sessiond-seed";
const MAX_ADMIN_2FA_MINUTES: u32 = 24 * 60;
const USER_PREFIX: &str = "bench-user-";
const KNOWN: &str = "bench-known";
const ADMIN: &str = "bench-admin";
const CHUNK: usize = 50_000;
/// Ids per `IN (…)` list: below SQLite's limit on bound parameters.
const ID_CHUNK: usize = 10_000;
/// Names shown in the refusal message.
const SAMPLE: usize = 3;

/// User agents with weights, roughly as a consumer product sees them.
const AGENTS: [(&str, u32); 10] = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 30),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", 8),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", 10),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36", 8),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", 16),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", 14),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 5),
    ("Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36", 4),
    ("curl/8.4.0", 3),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
];

const FIRST: [&str; 12] = [
    "Ada", "Bola", "Chen", "Dara", "Emeka", "Funke", "Goran", "Hana", "Ines", "Jonas", "Kemi",
    "Lucia",
];
const LAST: [&str; 10] = [
    "Olasupo", "Novak", "Silva", "Okafor", "Larsen", "Moreau", "Tanaka", "Haddad", "Kowalski",
    "Reyes",
];

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // A supplied password is read and checked before the store is touched.
    let given_admin_password = args
        .admin_password
        .as_deref()
        .map(sessiond::cli::read_password)
        .transpose()?;
    let mut settings = Settings::defaults();
    settings.database_url = args.database_url.clone();
    let mut conn =
        db::establish(&settings).with_context(|| format!("connecting to {}", args.database_url))?;
    if !args.allow_existing_data {
        if let Some(found) = foreign_data(&mut conn)? {
            anyhow::bail!(
                "refusing to seed {}: it holds {found}; pass --allow-existing-data to seed it anyway",
                args.database_url
            );
        }
    }
    db::run_migrations(&mut conn)?;
    server_settings::get_or_insert(&mut conn, SEED_MARK, SEED_MARK_VALUE)?;
    let started = std::time::Instant::now();
    let mut rng = StdRng::from_entropy();
    // Fresh passwords on every run: one shared by the ordinary users (a
    // single argon2 hash keeps bulk inserts fast), one for the admin.
    let user_password = password::generate();
    let user_hash = hash(&user_password)?;
    let admin_password_generated = given_admin_password.is_none();
    let admin_password = given_admin_password.unwrap_or_else(password::generate);
    let admin_hash = hash(&admin_password)?;
    let now = clock::now();
    let devices: Vec<(Device, u32)> = AGENTS
        .iter()
        .map(|(ua, w)| (Device::from_user_agent(ua), *w))
        .collect();
    let total_weight: u32 = devices.iter().map(|(_, w)| w).sum();

    // Users: bench-user-00000 … plus the known user and the admin.
    let existing = seed_users(&mut conn)?;
    let have = |name: &str| existing.iter().any(|(_, key, _)| key == name);
    let mut wanted: Vec<(String, String, bool)> = (0..args.users)
        .map(|i| {
            (
                format!("{USER_PREFIX}{i:05}"),
                format!(
                    "{} {}",
                    FIRST[i % FIRST.len()],
                    LAST[(i / FIRST.len()) % LAST.len()]
                ),
                false,
            )
        })
        .filter(|(name, _, _)| !have(name))
        .collect();
    if !have(KNOWN) {
        wanted.push((KNOWN.into(), "Known Bench".into(), false));
    }
    if !have(ADMIN) {
        wanted.push((ADMIN.into(), "Bench Admin".into(), true));
    }
    let guids: Vec<String> = wanted
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let rows: Vec<NewUser<'_>> = wanted
        .iter()
        .zip(&guids)
        .map(|((name, display, admin), guid)| NewUser {
            guid,
            username: name,
            username_key: name,
            name: display,
            password_hash: if *admin { &admin_hash } else { &user_hash },
            roles: if *admin { "user,admin" } else { "user" },
            active: true,
            totp_enabled: false,
            created_at: now,
            updated_at: now,
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        sessiond::store::users::insert_many(&mut conn, chunk)?;
    }
    let seeded = seed_users(&mut conn)?;
    let find = |name: &str| seeded.iter().find(|(_, key, _)| key == name).cloned();
    let (known_id, _, known_guid) = find(KNOWN).context("known user missing")?;
    let (admin_id, _, admin_guid) = find(ADMIN).context("admin missing")?;
    // Users seeded by earlier runs take this run's passwords.
    let ordinary: Vec<i64> = seeded
        .iter()
        .filter(|(id, _, _)| *id != admin_id)
        .map(|(id, _, _)| *id)
        .collect();
    set_password_hash(&mut conn, &ordinary, &user_hash, now)?;
    set_password_hash(&mut conn, &[admin_id], &admin_hash, now)?;
    let pool: Vec<&(i64, String, String)> = seeded
        .iter()
        .filter(|(_, key, _)| key.starts_with(USER_PREFIX))
        .collect();
    anyhow::ensure!(
        !pool.is_empty() || args.sessions == 0,
        "no users to give sessions to"
    );

    // Sessions: top the seeded users up to the requested count.
    let pool_ids: Vec<i64> = pool.iter().map(|(id, _, _)| *id).collect();
    let mut present = 0usize;
    for ids in pool_ids.chunks(ID_CHUNK) {
        let counted: i64 = sessions::table
            .filter(sessions::user_id.eq_any(ids))
            .count()
            .get_result(&mut conn)?;
        present += counted as usize;
    }
    let missing = args.sessions.saturating_sub(present);
    let rebuild = if missing >= 100_000 {
        drop_secondary_indexes(&mut conn)?
    } else {
        Vec::new()
    };
    let mut inserted = 0;
    while inserted < missing {
        let batch = (missing - inserted).min(CHUNK);
        let rows: Vec<NewSession> = (0..batch)
            .map(|_| {
                let owner = pool[rng.gen_range(0..pool.len())];
                let mut pick = rng.gen_range(0..total_weight);
                let device = devices
                    .iter()
                    .find(|(_, w)| {
                        if pick < *w {
                            true
                        } else {
                            pick -= w;
                            false
                        }
                    })
                    .map(|(d, _)| d.clone())
                    .unwrap_or_default();
                let login_at = clock::plus_seconds(now, -rng.gen_range(0..30 * 86_400));
                let last_activity_at =
                    clock::plus_seconds(login_at, rng.gen_range(0..86_400)).min(now);
                // Nobody logs in with these tokens: a fast seeded generator will do.
                let mut token = [0u8; 32];
                rng.fill(&mut token);
                let token = AuthToken::parse(&hex(&token)).unwrap_or_else(AuthToken::generate);
                new_session(
                    owner.0,
                    &owner.2,
                    device,
                    login_at,
                    last_activity_at,
                    &mut rng,
                    &token,
                    None,
                )
            })
            .collect();
        bulk::insert_sessions(&mut conn, &rows)?;
        inserted += batch;
        eprint!("\rseeded {} of {missing} sessions", inserted);
    }
    if missing > 0 {
        eprintln!();
    }
    if !rebuild.is_empty() {
        eprintln!("rebuilding {} indexes", rebuild.len());
        rebuild_indexes(&mut conn, &rebuild)?;
    }

    // The known user and the admin get fresh sessions on every run, so their
    // tokens can be handed out.
    diesel::delete(
        sessions::table.filter(
            sessions::user_id
                .eq(known_id)
                .or(sessions::user_id.eq(admin_id)),
        ),
    )
    .execute(&mut conn)?;
    let mut known_token = None;
    let mut rows = Vec::with_capacity(args.known_sessions);
    for i in 0..args.known_sessions {
        let token = AuthToken::generate();
        let device = devices[i % devices.len()].0.clone();
        let login_at = clock::plus_seconds(now, -(i as i64) * 3600);
        rows.push(new_session(
            known_id,
            &known_guid,
            device,
            login_at,
            now,
            &mut rng,
            &token,
            None,
        ));
        known_token.get_or_insert(token);
    }
    let admin_token = AuthToken::generate();
    let admin_2fa_until = clock::plus_seconds(clock::now(), i64::from(args.admin_2fa_minutes) * 60);
    rows.push(new_session(
        admin_id,
        &admin_guid,
        devices[0].0.clone(),
        now,
        now,
        &mut rng,
        &admin_token,
        Some(admin_2fa_until),
    ));
    bulk::insert_sessions(&mut conn, &rows)?;
    if let AnyConnection::Postgresql(pg) = &mut conn {
        diesel::sql_query("VACUUM ANALYZE").execute(pg)?;
    }

    let total: i64 = sessions::table.count().get_result(&mut conn)?;
    let known_token = known_token.context("--known-sessions must be at least 1")?;
    let known_session: String = sessions::table
        .filter(sessions::token_hash.eq(known_token.hash().as_str()))
        .select(sessions::session_id)
        .first(&mut conn)?;
    let mut admin = json!({
        "userId": admin_guid,
        "token": admin_token.expose(),
        "username": ADMIN,
        "twoFactorUntil": clock::iso_millis(admin_2fa_until),
    });
    if admin_password_generated {
        admin["password"] = json!(admin_password);
    }
    let tokens = json!({
        "known": {"userId": known_guid, "token": known_token.expose(), "sessionId": known_session, "username": KNOWN, "password": user_password},
        "admin": admin,
        "userPrefix": USER_PREFIX,
        "users": seeded.len(),
        "sessions": total,
    });
    write_private(&args.tokens_out, &format!("{tokens:#}\n"))?;
    println!(
        "{} users and {total} sessions in {} ({} sessions added in {:.1}s); tokens in {} (mode 0600{})",
        seeded.len(),
        args.database_url,
        missing,
        started.elapsed().as_secs_f64(),
        args.tokens_out.display(),
        if admin_password_generated {
            ", with bench-admin's generated password"
        } else {
            ""
        }
    );
    Ok(())
}

fn hash(password: &str) -> anyhow::Result<String> {
    password::hash(password).map_err(|e| anyhow::anyhow!("hashing: {e}"))
}

/// Whether a username key is one the seeder creates: `bench-user-` and at
/// least five digits, the known user or the admin.
fn is_seed_key(key: &str) -> bool {
    key == KNOWN
        || key == ADMIN
        || key
            .strip_prefix(USER_PREFIX)
            .is_some_and(|digits| digits.len() >= 5 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The seeder's users in the store: (id, username key, guid), by id.
fn seed_users(conn: &mut AnyConnection) -> anyhow::Result<Vec<(i64, String, String)>> {
    let candidates: Vec<(i64, String, String)> = users::table
        .filter(users::username_key.like("bench-%"))
        .select((users::id, users::username_key, users::guid))
        .order(users::id)
        .load(conn)?;
    Ok(candidates
        .into_iter()
        .filter(|(_, key, _)| is_seed_key(key))
        .collect())
}

fn set_password_hash(
    conn: &mut AnyConnection,
    ids: &[i64],
    hash: &str,
    now: chrono::NaiveDateTime,
) -> anyhow::Result<()> {
    for ids in ids.chunks(ID_CHUNK) {
        diesel::update(users::table.filter(users::id.eq_any(ids)))
            .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
            .execute(conn)?;
    }
    Ok(())
}

/// What the store holds that the seeder did not put there, described in a
/// few words; `None` when it may be seeded. It reads only, and runs before
/// migrations, so a refused store is left exactly as it was. Foreign data
/// is: users other than the seeder's own (by name), users in a store the
/// seeder never marked (so a real store whose users happen to have bench
/// names is refused too), or, when the `users` table is missing, tables of
/// another application.
fn foreign_data(conn: &mut AnyConnection) -> anyhow::Result<Option<String>> {
    let tables = table_names(conn)?;
    if !tables.iter().any(|t| t == "users") {
        let other: Vec<String> = tables
            .into_iter()
            .filter(|t| !t.starts_with("__diesel"))
            .collect();
        return Ok((!other.is_empty()).then(|| {
            format!(
                "{} but no sessiond users table ({})",
                plural(other.len(), "table"),
                sample(&other)
            )
        }));
    }
    let total: i64 = users::table.count().get_result(conn)?;
    if total == 0 {
        return Ok(None);
    }
    let unlike_seed = || {
        diesel::dsl::not(
            users::username_key
                .like(format!("{USER_PREFIX}%"))
                .or(users::username_key.eq(KNOWN))
                .or(users::username_key.eq(ADMIN)),
        )
    };
    let unlike: i64 = users::table
        .filter(unlike_seed())
        .count()
        .get_result(conn)?;
    let mut names: Vec<String> = users::table
        .filter(unlike_seed())
        .order(users::id)
        .select(users::username)
        .limit(SAMPLE as i64 + 1)
        .load(conn)?;
    // Names that start like the seeder's but are not its own.
    let lookalikes: Vec<String> = users::table
        .filter(users::username_key.like(format!("{USER_PREFIX}%")))
        .order(users::id)
        .select(users::username_key)
        .load::<String>(conn)?
        .into_iter()
        .filter(|key| !is_seed_key(key))
        .collect();
    let foreign = unlike as usize + lookalikes.len();
    if foreign > 0 {
        names.extend(lookalikes);
        return Ok(Some(format!(
            "{} sessiond-seed did not create ({})",
            plural(foreign, "user"),
            sample(&names)
        )));
    }
    if server_settings::get(conn, SEED_MARK)?.as_deref() != Some(SEED_MARK_VALUE) {
        return Ok(Some(format!(
            "{} but no mark of an earlier sessiond-seed run",
            plural(total as usize, "user")
        )));
    }
    Ok(None)
}

/// The tables in the store's schema (Postgres: the current schema).
fn table_names(conn: &mut AnyConnection) -> anyhow::Result<Vec<String>> {
    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let tables: Vec<Table> = match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(
            "SELECT tablename::text AS name FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() ORDER BY tablename",
        )
        .load(pg)?,
        AnyConnection::Sqlite(sqlite) => diesel::sql_query(
            "SELECT name FROM sqlite_master \
             WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .load(sqlite)?,
    };
    Ok(tables.into_iter().map(|t| t.name).collect())
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The first few names, for a one-line message.
fn sample(names: &[String]) -> String {
    let mut shown = names
        .iter()
        .take(SAMPLE)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SAMPLE {
        shown.push_str(", …");
    }
    shown
}

/// Writes `contents` to `path` readable by its owner only: a new file created
/// with mode 0600 beside it, renamed over `path`. An existing file is
/// replaced, never reopened, so whoever could read it before cannot read the
/// new tokens through it. Missing parent directories are created.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.with_context(|| format!("writing {}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Drops the secondary indexes of `sessions` before a large load and
/// returns their definitions, to be rebuilt after it: building an index
/// once is much faster than maintaining it row by row.
fn drop_secondary_indexes(conn: &mut AnyConnection) -> anyhow::Result<Vec<String>> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(Vec::new());
    };
    #[derive(QueryableByName)]
    struct Index {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        definition: String,
    }
    let indexes: Vec<Index> = diesel::sql_query(
        "SELECT i.indexname AS name, i.indexdef AS definition FROM pg_indexes i \
         WHERE i.tablename = 'sessions' AND i.indexdef NOT LIKE 'CREATE UNIQUE%'",
    )
    .load(pg)?;
    for index in &indexes {
        diesel::sql_query(format!("DROP INDEX {}", index.name)).execute(pg)?;
    }
    Ok(indexes.into_iter().map(|i| i.definition).collect())
}

fn rebuild_indexes(conn: &mut AnyConnection, definitions: &[String]) -> anyhow::Result<()> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("SET maintenance_work_mem = '1GB'").execute(pg)?;
        for definition in definitions {
            diesel::sql_query(definition).execute(pg)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn new_session(
    user_id: i64,
    user_guid: &str,
    device: Device,
    login_at: chrono::NaiveDateTime,
    last_activity_at: chrono::NaiveDateTime,
    rng: &mut StdRng,
    token: &AuthToken,
    two_factor_until: Option<chrono::NaiveDateTime>,
) -> NewSession {
    let session_id: String = (0..17)
        .map(|_| char::from(SESSION_ID_ALPHABET[rng.gen_range(0..SESSION_ID_ALPHABET.len())]))
        .collect();
    let search_term = device.search_term(&session_id, user_guid);
    NewSession {
        session_id,
        user_id,
        token_hash: token.hash().as_str().to_owned(),
        token_hint: token.hint(),
        description: String::new(),
        device_type: device.kind,
        device_name: device.name,
        device_version: device.version,
        device_long_version: device.long_version,
        os_name: device.os_name,
        os_version: device.os_version,
        device_category: device.category,
        ip: format!(
            "10.{}.{}.{}",
            rng.gen_range(0..256),
            rng.gen_range(0..256),
            rng.gen_range(1..255)
        ),
        host: "sessions.example.com".into(),
        instance_id: "seed".into(),
        login_at,
        last_activity_at,
        expires_at: clock::plus_seconds(clock::now(), 90 * 86_400),
        idle_timeout_seconds: 90 * 86_400,
        permanent: false,
        two_factor_until,
        search_term,
        api_defaults: "{}".into(),
        updated_at: last_activity_at,
    }
}
