//! `expr COLLATE "C"`: text ordered by its bytes, on both stores.
//!
//! Postgres otherwise orders text by the database's locale (`en_US.utf8`
//! in the stock image puts "iPhone" between "Android" and "Linux"), while
//! SQLite orders by bytes. Sorts and the keyset comparisons that follow
//! them use this so a list reads the same on either store, and a cursor
//! compares exactly as the ORDER BY sorted. SQLite gets a collation named
//! `C` on every connection (see `ConnectionSetup`).

use diesel::backend::Backend;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::QueryResult;

#[derive(Debug, Clone, Copy, QueryId, ValidGrouping)]
pub struct CollateC<E>(E);

/// Orders and compares `expr` by bytes.
pub fn collate_c<E: Expression>(expr: E) -> CollateC<E> {
    CollateC(expr)
}

impl<E: Expression> Expression for CollateC<E> {
    type SqlType = E::SqlType;
}

impl<E: AppearsOnTable<QS>, QS: ?Sized> AppearsOnTable<QS> for CollateC<E> {}

impl<E: SelectableExpression<QS>, QS: ?Sized> SelectableExpression<QS> for CollateC<E> {}

impl<E: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for CollateC<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("(");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" COLLATE \"C\")");
        Ok(())
    }
}

/// SQLite's `C`: byte order, the same as its built-in `BINARY`.
///
/// diesel hands a collation callback SQLite's operands swapped (its
/// `run_collation_function` calls `callback(rhs, lhs)`), so this compares
/// its second argument with its first. The SQLite half of the sort tests
/// fails if that ever changes.
pub fn compare_bytes(rhs: &str, lhs: &str) -> std::cmp::Ordering {
    lhs.as_bytes().cmp(rhs.as_bytes())
}
