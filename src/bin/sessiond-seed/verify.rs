//! The check that keeps the seeder off a store holding anything but its own
//! data, and the mark that says a store was seeded.

use sessiond::db::{self, Conn};
use sessiond::store::{settings as server_settings, users};

use crate::users::{is_seed_key, ADMIN, KNOWN, USER_PREFIX};

/// The server setting that marks a store as the seeder's.
pub const SEED_MARK: &str = "seeded_by";
pub const SEED_MARK_VALUE: &str = "sessiond-seed";
/// Names shown in the refusal message.
const SAMPLE: usize = 3;

/// What the store holds that the seeder did not put there, described in a
/// few words; `None` when it may be seeded. It reads only, and runs before
/// migrations, so a refused store is left exactly as it was. Foreign data
/// is: users other than the seeder's own (by name), users in a store the
/// seeder never marked (so a real store whose users happen to have bench
/// names is refused too), or, when the `users` table is missing, tables of
/// another application.
pub fn foreign_data(conn: &mut Conn) -> anyhow::Result<Option<String>> {
    let tables = db::table_names(conn)?;
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
    let total = users::count(conn)?;
    if total == 0 {
        return Ok(None);
    }
    let seed_pattern = format!("{USER_PREFIX}%");
    let (unlike, mut names) =
        users::others(conn, &seed_pattern, &[KNOWN, ADMIN], SAMPLE as i64 + 1)?;
    // Names that start like the seeder's but are not its own.
    let lookalikes: Vec<String> = users::keys_like(conn, &seed_pattern)?
        .into_iter()
        .map(|(_, key, _)| key)
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
