//! A page on the admin surface: a JSON array with `X-Total-Count` and an
//! RFC 8288 `Link` header.

use actix_web::http::header;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::domain::paging::Paging;

/// A JSON array with `X-Total-Count` and `Link` (`first`, `prev`, `next`, `last`).
pub fn paged<T: Serialize>(
    path: &str,
    extra_query: &[(&str, String)],
    paging: Paging,
    total: i64,
    items: Vec<T>,
) -> HttpResponse {
    let link_to = |page: i64| {
        let mut query = vec![
            ("page", page.to_string()),
            ("pageSize", paging.count.to_string()),
        ];
        query.extend(extra_query.iter().cloned());
        let encoded = query
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("<{path}?{encoded}>")
    };
    let last = paging.last_page(total);
    let mut links = vec![format!("{}; rel=\"first\"", link_to(1))];
    let page = paging.page();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to((page - 1).min(last))));
    }
    if page < last {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
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
