//! The queries, one module per table. Synchronous functions taking `&mut Conn`;
//! no HTTP here.

pub mod backup_codes;
pub mod events;
pub mod failures;
pub mod session_counters;
pub mod sessions;
pub mod settings;
pub mod users;
pub mod webhooks;

/// True for a unique-constraint violation (a username or id already taken).
pub fn is_unique_violation(error: &crate::db::DbError) -> bool {
    matches!(
        error,
        crate::db::DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}
