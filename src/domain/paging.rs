//! Paging: one type for every list, whichever way a surface writes it
//! (Rocket.Chat's `offset` and `count`, the admin surface's `page` and
//! `pageSize`). Both validate at parse time.

/// Rows to skip and rows to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    pub offset: i64,
    pub count: i64,
}

/// Rocket.Chat's default and largest `count`.
pub const DEFAULT_COUNT: i64 = 50;
pub const MAX_COUNT: i64 = 100;
/// The admin surface's default and largest `pageSize`.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

/// The highest `page`: its rows are numbers at any page size.
pub const MAX_PAGE: i64 = i64::MAX / MAX_PAGE_SIZE;

impl Paging {
    /// `offset` and `count`: count 0 or absent means 50, above 100 is clamped.
    pub fn from_offset(offset: Option<&str>, count: Option<&str>) -> Result<Self, String> {
        let offset = match offset {
            None => 0,
            Some(raw) => whole("offset", raw, 0)?,
        };
        let count = match count {
            None => DEFAULT_COUNT,
            Some(raw) => match whole("count", raw, 0)? {
                0 => DEFAULT_COUNT,
                n => n.min(MAX_COUNT),
            },
        };
        Ok(Paging { offset, count })
    }

    /// `page` (1-based, default 1, at most [`MAX_PAGE`]) and `pageSize` (default 20, above 100
    /// clamped).
    pub fn from_page(page: Option<&str>, size: Option<&str>) -> Result<Self, String> {
        let page = page.map_or(Ok(1), |raw| whole("page", raw, 1))?;
        let size = size.map_or(Ok(DEFAULT_PAGE_SIZE), |raw| whole("pageSize", raw, 1))?;
        let count = size.min(MAX_PAGE_SIZE);
        // The page's end must be a number at the largest page size, so the
        // bound does not depend on `pageSize`.
        if page > MAX_PAGE {
            return Err(format!("'page' must be at most {MAX_PAGE}"));
        }
        Ok(Paging {
            offset: (page - 1) * count,
            count,
        })
    }

    /// The 1-based page this is, in page-numbered paging.
    pub fn page(self) -> i64 {
        self.offset / self.count.max(1) + 1
    }

    /// The last page of `total` rows (at least 1).
    pub fn last_page(self, total: i64) -> i64 {
        let size = self.count.max(1);
        ((total + size - 1) / size).max(1)
    }
}

/// A whole number of at least `min` (0 or 1), with a message that says so.
fn whole(name: &str, raw: &str, min: i64) -> Result<i64, String> {
    let kind = if min == 0 { "non-negative" } else { "positive" };
    match raw.parse::<i64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("'{name}' must be a {kind} integer, got \"{raw}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_clamps_and_treats_zero_as_default() {
        assert_eq!(
            Paging::from_offset(None, None),
            Ok(Paging {
                offset: 0,
                count: 50
            })
        );
        assert_eq!(
            Paging::from_offset(Some("7"), Some("0")),
            Ok(Paging {
                offset: 7,
                count: 50
            })
        );
        assert_eq!(
            Paging::from_offset(None, Some("101")),
            Ok(Paging {
                offset: 0,
                count: 100
            })
        );
        assert_eq!(
            Paging::from_offset(None, Some("100")),
            Ok(Paging {
                offset: 0,
                count: 100
            })
        );
        assert_eq!(
            Paging::from_offset(None, Some("1")),
            Ok(Paging {
                offset: 0,
                count: 1
            })
        );
    }

    #[test]
    fn paging_refuses_negative_and_non_numeric_values() {
        for (offset, count) in [
            (Some("-1"), None),
            (None, Some("-5")),
            (Some("abc"), None),
            (None, Some("1.5")),
            (None, Some("")),
            (Some("99999999999999999999"), None),
        ] {
            let error = Paging::from_offset(offset, count).unwrap_err();
            assert!(
                error.contains("non-negative integer"),
                "{offset:?} {count:?}: {error}"
            );
        }
    }

    #[test]
    fn pages_default_clamp_and_refuse_what_is_not_a_positive_number() {
        let paging = Paging::from_page(None, None).unwrap();
        assert_eq!(
            paging,
            Paging {
                offset: 0,
                count: 20
            }
        );
        assert_eq!(paging.page(), 1);
        let paging = Paging::from_page(Some("3"), Some("500")).unwrap();
        assert_eq!(
            paging,
            Paging {
                offset: 200,
                count: 100
            }
        );
        assert_eq!(paging.page(), 3);
        for (page, size) in [
            (Some("0"), None),
            (Some("-1"), None),
            (None, Some("0")),
            (Some("x"), None),
            (Some("9223372036854775807"), Some("100")),
        ] {
            assert!(Paging::from_page(page, size).is_err(), "{page:?} {size:?}");
        }
    }

    #[test]
    fn the_last_page_that_can_be_asked_for_ends_within_range() {
        let largest = i64::MAX / 100;
        let paging = Paging::from_page(Some(&largest.to_string()), Some("100")).unwrap();
        assert!(paging.offset.checked_add(paging.count).is_some());
        let past = (largest + 1).to_string();
        assert_eq!(MAX_PAGE, largest);
        // Past it is refused at every page size, as the document says.
        for size in ["1", "20", "100"] {
            assert_eq!(
                Paging::from_page(Some(&past), Some(size)),
                Err(format!("'page' must be at most {largest}"))
            );
        }
    }

    #[test]
    fn last_page_is_at_least_one() {
        let paging = Paging {
            offset: 0,
            count: 20,
        };
        assert_eq!(paging.last_page(0), 1);
        assert_eq!(paging.last_page(20), 1);
        assert_eq!(paging.last_page(21), 2);
    }
}
