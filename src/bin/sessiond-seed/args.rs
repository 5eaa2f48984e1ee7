//! The seeder's command line.

use std::path::PathBuf;

use clap::Parser;

use sessiond::config::DatabaseUrl;

/// The longest `--admin-2fa-minutes`: one day.
pub const MAX_ADMIN_2FA_MINUTES: u32 = 24 * 60;

/// Seed a sessiond store for benchmarking.
#[derive(Parser)]
#[command(name = "sessiond-seed", long_about = LONG_ABOUT)]
pub struct Args {
    /// The store to fill.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://sessiond.db",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,
    /// Seeded users (besides the known user and the admin).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Seeded sessions spread over those users.
    #[arg(long, default_value_t = 1_000_000)]
    pub sessions: usize,
    /// Sessions of the known user `bench-known`, all fresh on every run.
    #[arg(long, default_value_t = 50)]
    pub known_sessions: usize,
    /// Where to write the tokens and passwords the load scripts use (JSON,
    /// mode 0600; missing directories are created).
    #[arg(long, default_value = "bench/results/tmp/tokens.json")]
    pub tokens_out: PathBuf,
    /// Seed a store that holds data sessiond-seed did not create (users
    /// other than its own, or another application's tables). Without it such
    /// a store is refused.
    #[arg(long)]
    pub allow_existing_data: bool,
    /// The password of `bench-admin` (`-` reads one line from standard
    /// input). Without it, a random password is generated on every run and
    /// recorded only in the tokens file.
    #[arg(long, value_name = "PASSWORD")]
    pub admin_password: Option<String>,
    /// How long the seeded admin session counts as past the second factor,
    /// in minutes (1 to 1440).
    #[arg(long, value_name = "MINUTES", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..=MAX_ADMIN_2FA_MINUTES as i64))]
    pub admin_2fa_minutes: u32,
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
