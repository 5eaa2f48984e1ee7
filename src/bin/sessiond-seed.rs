//! Fills a store with users and sessions for the benchmark: a realistic mix
//! of devices, user agents and login times, inserted in bulk (one argon2
//! hash shared by every seeded user). Idempotent: it tops the store up to
//! the requested sizes and replaces only the two sessions it hands out.

use std::io::Write;
use std::path::PathBuf;
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
use sessiond::domain::token::AuthToken;
use sessiond::store::bulk;
use sessiond::store::sessions::NewSession;
use sessiond::store::users::NewUser;

/// Seed a sessiond store for benchmarking.
#[derive(Parser)]
#[command(name = "sessiond-seed")]
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
    /// Where to write the tokens the load script uses (JSON).
    #[arg(long, default_value = "bench/results/tmp/tokens.json")]
    tokens_out: PathBuf,
}

const PASSWORD: &str = "bench-password";
const SESSION_ID_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
const KNOWN: &str = "bench-known";
const ADMIN: &str = "bench-admin";
const CHUNK: usize = 50_000;

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
    let mut settings = Settings::defaults();
    settings.database_url = args.database_url.clone();
    let mut conn =
        db::establish(&settings).with_context(|| format!("connecting to {}", args.database_url))?;
    db::run_migrations(&mut conn)?;
    let started = std::time::Instant::now();
    let mut rng = StdRng::from_entropy();
    let hash = password::hash(PASSWORD).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let now = clock::now();
    let devices: Vec<(Device, u32)> = AGENTS
        .iter()
        .map(|(ua, w)| (Device::from_user_agent(ua), *w))
        .collect();
    let total_weight: u32 = devices.iter().map(|(_, w)| w).sum();

    // Users: bench-user-00000 … plus the known user and the admin.
    let existing: Vec<(i64, String, String)> = users::table
        .filter(users::username_key.like("bench-%"))
        .select((users::id, users::username_key, users::guid))
        .load(&mut conn)?;
    let have = |name: &str| existing.iter().any(|(_, key, _)| key == name);
    let mut wanted: Vec<(String, String, bool)> = (0..args.users)
        .map(|i| {
            (
                format!("bench-user-{i:05}"),
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
            password_hash: &hash,
            roles: if *admin { "user,admin" } else { "user" },
            active: true,
            totp_enabled: false,
            created_at: now,
            updated_at: now,
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        bulk::insert_users(&mut conn, chunk)?;
    }
    let seeded: Vec<(i64, String, String)> = users::table
        .filter(users::username_key.like("bench-%"))
        .select((users::id, users::username_key, users::guid))
        .order(users::id)
        .load(&mut conn)?;
    let find = |name: &str| seeded.iter().find(|(_, key, _)| key == name).cloned();
    let (known_id, _, known_guid) = find(KNOWN).context("known user missing")?;
    let (admin_id, _, admin_guid) = find(ADMIN).context("admin missing")?;
    let pool: Vec<&(i64, String, String)> = seeded
        .iter()
        .filter(|(_, key, _)| key.starts_with("bench-user-"))
        .collect();
    anyhow::ensure!(
        !pool.is_empty() || args.sessions == 0,
        "no users to give sessions to"
    );

    // Sessions: top the seeded users up to the requested count.
    let pool_ids: Vec<i64> = pool.iter().map(|(id, _, _)| *id).collect();
    let present: i64 = sessions::table
        .filter(sessions::user_id.ne(known_id))
        .filter(sessions::user_id.ne(admin_id))
        .filter(sessions::user_id.eq_any(&pool_ids))
        .count()
        .get_result(&mut conn)?;
    let missing = args.sessions.saturating_sub(present as usize);
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
    rows.push(new_session(
        admin_id,
        &admin_guid,
        devices[0].0.clone(),
        now,
        now,
        &mut rng,
        &admin_token,
        Some(clock::far_future()),
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
    if let Some(dir) = args.tokens_out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tokens = json!({
        "known": {"userId": known_guid, "token": known_token.expose(), "sessionId": known_session, "username": KNOWN, "password": PASSWORD},
        "admin": {"userId": admin_guid, "token": admin_token.expose()},
        "users": seeded.len(),
        "sessions": total,
    });
    let mut file = std::fs::File::create(&args.tokens_out)?;
    writeln!(file, "{tokens:#}")?;
    println!(
        "{} users and {total} sessions in {} ({} sessions added in {:.1}s); tokens in {}",
        seeded.len(),
        args.database_url,
        missing,
        started.elapsed().as_secs_f64(),
        args.tokens_out.display()
    );
    Ok(())
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
    let search_term = format!(
        "{}{}{}{}{}",
        device.name, device.kind, device.os_name, session_id, user_guid
    );
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
