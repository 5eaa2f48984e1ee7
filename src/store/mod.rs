//! The queries, one module per table. Synchronous functions taking `&mut Conn`;
//! no HTTP here.

pub mod admin_lists;
pub mod bulk;
pub mod failures;
pub mod json_sessions;
pub mod session_counters;
pub mod session_lists;
pub mod sessions;
pub mod settings;
pub mod users;

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
