//! Paging on the admin surface: `page` and `pageSize` in, a JSON array with
//! `X-Total-Count` and an RFC 8288 `Link` header out.

use actix_web::http::header;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::error::Error;

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

/// `page` (1-based, default 1) and `pageSize` (default 20, above 100 clamped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub size: i64,
}

impl PageRequest {
    pub fn parse(page: Option<&str>, size: Option<&str>) -> Result<Self, Error> {
        let positive = |name: &str, raw: &str| match raw.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(Error::InvalidParams(format!(
                "'{name}' must be a positive integer, got \"{raw}\""
            ))),
        };
        let page = page.map_or(Ok(1), |raw| positive("page", raw))?;
        let size = size.map_or(Ok(DEFAULT_PAGE_SIZE), |raw| positive("pageSize", raw))?;
        let size = size.min(MAX_PAGE_SIZE);
        if page.checked_mul(size).is_none() {
            return Err(Error::InvalidParams("'page' is out of range".into()));
        }
        Ok(PageRequest { page, size })
    }

    pub fn offset(self) -> i64 {
        (self.page - 1) * self.size
    }

    fn last_page(self, total: i64) -> i64 {
        ((total + self.size - 1) / self.size).max(1)
    }
}

/// A JSON array with `X-Total-Count` and `Link` (`first`, `prev`, `next`, `last`).
pub fn paged<T: Serialize>(
    path: &str,
    extra_query: &[(&str, String)],
    request: PageRequest,
    total: i64,
    items: Vec<T>,
) -> HttpResponse {
    let link_to = |page: i64| {
        let mut query = vec![
            ("page", page.to_string()),
            ("pageSize", request.size.to_string()),
        ];
        query.extend(extra_query.iter().cloned());
        let encoded = query
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("<{path}?{encoded}>")
    };
    let last = request.last_page(total);
    let mut links = vec![format!("{}; rel=\"first\"", link_to(1))];
    if request.page > 1 {
        links.push(format!(
            "{}; rel=\"prev\"",
            link_to((request.page - 1).min(last))
        ));
    }
    if request.page < last {
        links.push(format!("{}; rel=\"next\"", link_to(request.page + 1)));
    }
    links.push(format!("{}; rel=\"last\"", link_to(last)));
    HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .insert_header((header::LINK, links.join(", ")))
        .json(items)
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_clamps() {
        assert_eq!(
            PageRequest::parse(None, None).unwrap(),
            PageRequest { page: 1, size: 20 }
        );
        assert_eq!(
            PageRequest::parse(Some("3"), Some("500")).unwrap(),
            PageRequest { page: 3, size: 100 }
        );
        for (page, size) in [
            (Some("0"), None),
            (Some("-1"), None),
            (None, Some("0")),
            (Some("x"), None),
            (Some("9223372036854775807"), Some("100")),
        ] {
            assert!(PageRequest::parse(page, size).is_err(), "{page:?} {size:?}");
        }
    }

    #[test]
    fn last_page_is_at_least_one() {
        let request = PageRequest { page: 1, size: 20 };
        assert_eq!(request.last_page(0), 1);
        assert_eq!(request.last_page(20), 1);
        assert_eq!(request.last_page(21), 2);
    }
}
