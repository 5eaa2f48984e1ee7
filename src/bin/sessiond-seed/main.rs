//! Fills a store with users and sessions for the benchmark: a realistic mix
//! of devices, user agents and login times, inserted in bulk (one argon2
//! hash shared by every ordinary seeded user). Idempotent: it tops the store
//! up to the requested sizes and replaces only the two sessions it hands out.
//!
//! It only seeds a store that holds nothing but its own data (see
//! `verify::foreign_data`), gives `bench-admin` a random or supplied
//! password, bounds the admin session's second-factor window, and writes the
//! tokens file readable by its owner only.

mod args;
mod progress;
mod sessions;
mod tokens_file;
mod users;
mod verify;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use sessiond::config::{DatabaseUrl, Settings};
use sessiond::db;
use sessiond::domain::{clock, password};
use sessiond::store::sessions::bulk;
use sessiond::store::settings as server_settings;

use args::Args;
use users::{ADMIN, KNOWN, USER_PREFIX};

/// Rows per bulk insert.
const CHUNK: usize = 50_000;

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
        if let Some(found) = verify::foreign_data(&mut conn)? {
            anyhow::bail!(
                "refusing to seed {}: it holds {found}; pass --allow-existing-data to seed it anyway",
                args.database_url
            );
        }
    }
    db::run_migrations(&mut conn, settings.db_pooler)?;
    server_settings::get_or_insert(&mut conn, verify::SEED_MARK, verify::SEED_MARK_VALUE)?;
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
    let devices = sessions::Devices::parse();

    let seeded = users::top_up(&mut conn, args.users, &user_hash, &admin_hash, now)?;
    let missing = sessions::top_up(&mut conn, &mut rng, &devices, &seeded, args.sessions, now)?;
    let handed_out = sessions::reissue(
        &mut conn,
        &mut rng,
        &devices,
        &seeded,
        args.known_sessions,
        args.admin_2fa_minutes,
        now,
    )?;
    // Postgres only: SQLite has nothing to vacuum here.
    let postgres = matches!(args.database_url, DatabaseUrl::Postgres(_));
    let progress = postgres.then(|| progress::spinner("vacuum analyze"));
    bulk::vacuum_analyze(&mut conn)?;
    if let Some(progress) = progress {
        progress.finish();
    }

    let total = bulk::count_all(&mut conn)?;
    let known_token = handed_out
        .known_token
        .context("--known-sessions must be at least 1")?;
    let known_session = bulk::session_id_of_token(&mut conn, &known_token.hash())?;
    let (_, _, known_guid) = &seeded.known;
    let (_, _, admin_guid) = &seeded.admin;
    let mut admin = json!({
        "userId": admin_guid,
        "token": handed_out.admin_token.expose(),
        "username": ADMIN,
        "twoFactorUntil": clock::iso_millis(handed_out.admin_2fa_until),
    });
    if admin_password_generated {
        admin["password"] = json!(admin_password);
    }
    let tokens = json!({
        "known": {"userId": known_guid, "token": known_token.expose(), "sessionId": known_session, "username": KNOWN, "password": user_password},
        "admin": admin,
        "userPrefix": USER_PREFIX,
        "users": seeded.all.len(),
        "sessions": total,
    });
    tokens_file::write_private(&args.tokens_out, &format!("{tokens:#}\n"))?;
    println!(
        "{} users and {total} sessions in {} ({} sessions added in {:.1}s); tokens in {} (mode 0600{})",
        seeded.all.len(),
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
