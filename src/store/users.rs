//! `users`: accounts, roles, and the TOTP state shared by every instance.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::{collate_c, AnyConnection, Conn, DbResult, IntoDbResult};
use crate::store::backup_codes;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub guid: String,
    pub username: String,
    pub name: String,
    pub password_hash: String,
    pub roles: String,
    pub active: bool,
    pub totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl User {
    pub fn role_list(&self) -> Vec<&str> {
        self.roles.split(',').filter(|r| !r.is_empty()).collect()
    }

    pub fn is_admin(&self) -> bool {
        self.role_list().contains(&"admin")
    }
}

#[derive(Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
pub struct NewUser<'a> {
    pub guid: &'a str,
    pub username: &'a str,
    pub username_key: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub roles: &'a str,
    pub active: bool,
    pub totp_enabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Inserts a user; a taken username is a unique violation (see `store::is_unique_violation`).
pub fn insert(conn: &mut Conn, new: &NewUser<'_>) -> DbResult<User> {
    diesel::insert_into(users::table)
        .values(new)
        .execute(conn)
        .db()?;
    users::table
        .filter(users::guid.eq(new.guid))
        .select(User::as_select())
        .first(conn)
        .db()
}

pub fn find_by_username_key(conn: &mut Conn, key: &str) -> DbResult<Option<User>> {
    users::table
        .filter(users::username_key.eq(key))
        .select(User::as_select())
        .first(conn)
        .optional()
        .db()
}

/// Locks the user's row until the transaction ends, so changes to one
/// user's sessions (the session limit) happen one at a time, on every
/// instance. On SQLite a write takes the database's one write lock.
pub fn lock(conn: &mut Conn, user_id: i64) -> DbResult<()> {
    match conn {
        #[cfg(feature = "postgres")]
        AnyConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
                .bind::<diesel::sql_types::BigInt, _>(user_id)
                .execute(pg)
                .db()?;
        }
        AnyConnection::Sqlite(sqlite) => {
            diesel::sql_query("UPDATE users SET id = id WHERE id = ?")
                .bind::<diesel::sql_types::BigInt, _>(user_id)
                .execute(sqlite)
                .db()?;
        }
    }
    Ok(())
}

/// The guids of these users, by id.
pub fn guids(conn: &mut Conn, ids: &[i64]) -> DbResult<std::collections::HashMap<i64, String>> {
    let rows: Vec<(i64, String)> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::guid))
        .load(conn)
        .db()?;
    Ok(rows.into_iter().collect())
}

pub fn find_by_id(conn: &mut Conn, id: i64) -> DbResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
        .db()
}

pub fn find_by_guid(conn: &mut Conn, guid: &str) -> DbResult<Option<User>> {
    users::table
        .filter(users::guid.eq(guid))
        .select(User::as_select())
        .first(conn)
        .optional()
        .db()
}

pub fn list(conn: &mut Conn) -> DbResult<Vec<User>> {
    users::table
        .order(collate_c(users::username_key).asc())
        .select(User::as_select())
        .load(conn)
        .db()
}

pub fn count(conn: &mut Conn) -> DbResult<i64> {
    users::table.count().get_result(conn).db()
}

/// Returns whether a user with that key existed.
pub fn set_password_hash(
    conn: &mut Conn,
    key: &str,
    hash: &str,
    now: NaiveDateTime,
) -> DbResult<bool> {
    let updated = diesel::update(users::table.filter(users::username_key.eq(key)))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)
        .db()?;
    Ok(updated == 1)
}

/// Returns whether a user with that key existed.
pub fn set_roles(conn: &mut Conn, key: &str, roles: &str, now: NaiveDateTime) -> DbResult<bool> {
    let updated = diesel::update(users::table.filter(users::username_key.eq(key)))
        .set((users::roles.eq(roles), users::updated_at.eq(now)))
        .execute(conn)
        .db()?;
    Ok(updated == 1)
}

/// Lets the user log in again, or not; returns whether they existed.
pub fn set_active(
    conn: &mut Conn,
    user_id: i64,
    active: bool,
    now: NaiveDateTime,
) -> DbResult<bool> {
    let updated = diesel::update(users::table.find(user_id))
        .set((users::active.eq(active), users::updated_at.eq(now)))
        .execute(conn)
        .db()?;
    Ok(updated == 1)
}

/// Deletes a user whose sessions have all ended, with those sessions and
/// the user's backup codes, in one transaction.
pub fn delete(conn: &mut Conn, user_id: i64) -> DbResult<()> {
    use crate::db::schema::sessions;
    conn.transaction(|conn| {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?;
        backup_codes::delete_for_user(conn, user_id)?;
        diesel::delete(users::table.find(user_id)).execute(conn)?;
        Ok(())
    })
}

/// Stores a new, not yet confirmed TOTP secret. Refused (false) once TOTP is enabled.
pub fn set_pending_totp(
    conn: &mut Conn,
    user_id: i64,
    sealed_secret: &str,
    now: NaiveDateTime,
) -> DbResult<bool> {
    let updated = diesel::update(
        users::table
            .find(user_id)
            .filter(users::totp_enabled.eq(false)),
    )
    .set((
        users::totp_secret.eq(sealed_secret),
        users::updated_at.eq(now),
    ))
    .execute(conn)
    .db()?;
    Ok(updated == 1)
}

/// Accepts TOTP time step `step` for the user unless it, or a later one, was
/// accepted before. One atomic statement, so a code is good once across
/// every instance.
pub fn accept_totp_step(conn: &mut Conn, user_id: i64, step: i64) -> DbResult<bool> {
    let updated = diesel::update(
        users::table.find(user_id).filter(
            users::totp_last_step
                .is_null()
                .or(users::totp_last_step.lt(step)),
        ),
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)
    .db()?;
    Ok(updated == 1)
}

/// Turns TOTP on and replaces the backup codes, in one transaction.
pub fn enable_totp(
    conn: &mut Conn,
    user_id: i64,
    code_hashes: &[String],
    now: NaiveDateTime,
) -> DbResult<()> {
    conn.transaction(|conn| {
        // The write comes first so SQLite takes its write lock at once.
        diesel::update(users::table.find(user_id))
            .set((users::totp_enabled.eq(true), users::updated_at.eq(now)))
            .execute(conn)?;
        backup_codes::replace(conn, user_id, code_hashes)
    })
}

/// Turns TOTP off and forgets the secret and backup codes.
pub fn disable_totp(conn: &mut Conn, user_id: i64, now: NaiveDateTime) -> DbResult<()> {
    conn.transaction(|conn| {
        diesel::update(users::table.find(user_id))
            .set((
                users::totp_enabled.eq(false),
                users::totp_secret.eq(None::<String>),
                users::totp_last_step.eq(None::<i64>),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        backup_codes::delete_for_user(conn, user_id)?;
        Ok(())
    })
}

/// Creates a user with an already hashed password. Admins get both roles.
pub fn create(
    conn: &mut Conn,
    username: &crate::domain::username::Username,
    name: &str,
    password_hash: &str,
    admin: bool,
    now: NaiveDateTime,
) -> DbResult<User> {
    let guid = uuid::Uuid::new_v4().to_string();
    insert(
        conn,
        &NewUser {
            guid: &guid,
            username: username.as_str(),
            username_key: username.key(),
            name,
            password_hash,
            roles: if admin { "user,admin" } else { "user" },
            active: true,
            totp_enabled: false,
            created_at: now,
            updated_at: now,
        },
    )
}

/// Many users at once, for seeding: `COPY` on Postgres, one transaction on SQLite.
pub fn insert_many(conn: &mut Conn, rows: &[NewUser<'_>]) -> DbResult<usize> {
    crate::store::insert_many!(conn, users::table, rows)
}

/// (id, username key, guid) of the users whose key matches the `LIKE`
/// pattern `key_pattern`, by id. For the seeder, which finds its own users
/// by name.
pub fn keys_like(conn: &mut Conn, key_pattern: &str) -> DbResult<Vec<(i64, String, String)>> {
    users::table
        .filter(users::username_key.like(key_pattern))
        .select((users::id, users::username_key, users::guid))
        .order(users::id)
        .load(conn)
        .db()
}

/// Gives many users one password hash at once, for seeding.
pub fn set_password_hash_for_ids(
    conn: &mut Conn,
    ids: &[i64],
    hash: &str,
    now: NaiveDateTime,
) -> DbResult<()> {
    for ids in ids.chunks(crate::store::ID_CHUNK) {
        diesel::update(users::table.filter(users::id.eq_any(ids)))
            .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
            .execute(conn)
            .db()?;
    }
    Ok(())
}

/// The users whose key neither matches the `LIKE` pattern `key_pattern`
/// nor is one of `keys`: how many, and the usernames of the first `sample`
/// of them by id. The seeder's test for a store that holds others' users.
pub fn others(
    conn: &mut Conn,
    key_pattern: &str,
    keys: &[&str],
    sample: i64,
) -> DbResult<(i64, Vec<String>)> {
    let unlike = || {
        diesel::dsl::not(
            users::username_key
                .like(key_pattern)
                .or(users::username_key.eq_any(keys.iter().copied())),
        )
    };
    let count: i64 = users::table
        .filter(unlike())
        .count()
        .get_result(conn)
        .db()?;
    let names: Vec<String> = users::table
        .filter(unlike())
        .order(users::id)
        .select(users::username)
        .limit(sample)
        .load(conn)
        .db()?;
    Ok((count, names))
}
