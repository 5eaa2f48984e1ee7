//! The seeder's users: `bench-user-NNNNN`, the known user and the admin,
//! topped up to the requested count and given this run's passwords.

use anyhow::Context;
use chrono::NaiveDateTime;

use sessiond::db::Conn;
use sessiond::store::users::{self, NewUser};

pub const USER_PREFIX: &str = "bench-user-";
pub const KNOWN: &str = "bench-known";
pub const ADMIN: &str = "bench-admin";

/// Display names, combined so that neighbouring users differ.
const FIRST: [&str; 12] = [
    "Ada", "Bola", "Chen", "Dara", "Emeka", "Funke", "Goran", "Hana", "Ines", "Jonas", "Kemi",
    "Lucia",
];
const LAST: [&str; 10] = [
    "Olasupo", "Novak", "Silva", "Okafor", "Larsen", "Moreau", "Tanaka", "Haddad", "Kowalski",
    "Reyes",
];

/// One of the seeder's users: (id, username key, guid).
pub type SeedUser = (i64, String, String);

/// The seeder's users after a run's top-up.
pub struct SeedUsers {
    /// All of them, by id.
    pub all: Vec<SeedUser>,
    pub known: SeedUser,
    pub admin: SeedUser,
}

impl SeedUsers {
    /// The ordinary users (`bench-user-NNNNN`), who get the bulk sessions.
    pub fn pool(&self) -> Vec<&SeedUser> {
        self.all
            .iter()
            .filter(|(_, key, _)| key.starts_with(USER_PREFIX))
            .collect()
    }
}

/// Adds the users that are missing (`count` ordinary ones, the known user,
/// the admin) and gives every one of them this run's password: `admin_hash`
/// to the admin, `user_hash` to the rest.
pub fn top_up(
    conn: &mut Conn,
    count: usize,
    user_hash: &str,
    admin_hash: &str,
    now: NaiveDateTime,
) -> anyhow::Result<SeedUsers> {
    let existing = seed_users(conn)?;
    let have = |name: &str| existing.iter().any(|(_, key, _)| key == name);
    let mut wanted: Vec<(String, String, bool)> = (0..count)
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
            password_hash: if *admin { admin_hash } else { user_hash },
            roles: if *admin { "user,admin" } else { "user" },
            active: true,
            totp_enabled: false,
            created_at: now,
            updated_at: now,
        })
        .collect();
    if !rows.is_empty() {
        let progress = crate::progress::bar("creating users", rows.len());
        for chunk in rows.chunks(crate::CHUNK) {
            users::insert_many(conn, chunk)?;
            progress.inc(chunk.len() as u64);
        }
        progress.finish();
    }
    let seeded = seed_users(conn)?;
    let find = |name: &str| seeded.iter().find(|(_, key, _)| key == name).cloned();
    let known = find(KNOWN).context("known user missing")?;
    let admin = find(ADMIN).context("admin missing")?;
    // Users seeded by earlier runs take this run's passwords.
    let ordinary: Vec<i64> = seeded
        .iter()
        .filter(|(id, _, _)| *id != admin.0)
        .map(|(id, _, _)| *id)
        .collect();
    users::set_password_hash_for_ids(conn, &ordinary, user_hash, now)?;
    users::set_password_hash_for_ids(conn, &[admin.0], admin_hash, now)?;
    Ok(SeedUsers {
        all: seeded,
        known,
        admin,
    })
}

/// Whether a username key is one the seeder creates: `bench-user-` and at
/// least five digits, the known user or the admin.
pub fn is_seed_key(key: &str) -> bool {
    key == KNOWN
        || key == ADMIN
        || key
            .strip_prefix(USER_PREFIX)
            .is_some_and(|digits| digits.len() >= 5 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The seeder's users in the store, by id.
fn seed_users(conn: &mut Conn) -> anyhow::Result<Vec<SeedUser>> {
    Ok(users::keys_like(conn, "bench-%")?
        .into_iter()
        .filter(|(_, key, _)| is_seed_key(key))
        .collect())
}
