//! Refusals as every client expects them. A refusal made below the routes
//! (a body over the limit announced by `Content-Length`, a method a route
//! does not answer) becomes a problem document like every other; and a
//! request whose `Accept` prefers `text/html` to JSON gets the problem
//! document as a small HTML page, with the same status, code and sentence.
//! Programs (and `fetch`, which sends `*/*`) keep problem JSON. The page has
//! no script and no inline style, so the strict CSP holds.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tuaton_core::ErrorCode;

use super::{ApiError, Problem};

/// Whether `accept` ranks `text/html` above every JSON type (RFC 9110 §12.5.1 weights).
pub(crate) fn prefers_html(accept: &str) -> bool {
    let (mut html, mut json, mut any) = (0.0f32, 0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" | "text/*" => html = html.max(q),
            "application/json" | "application/problem+json" | "application/*" => json = json.max(q),
            "*/*" => any = any.max(q),
            _ => {}
        }
    }
    html > json.max(any)
}

/// `s` with the characters HTML gives meaning to replaced by references.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `template` with each `{{name}}` replaced by its value in `values`, in
/// one pass: a value is never read for placeholders, so text an agency
/// registered (its name, its purpose) cannot pull another value, such as
/// the session's CSRF token, into the page. A placeholder without a value
/// is left as it is.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let value = after.find("}}").and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The page for a problem document's title, sentence and code.
fn render(title: &str, detail: &str, code: &str) -> String {
    let (title, detail, code) = (escape(title), escape(detail), escape(code));
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Tuaton</title>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n\
         <p>{detail}</p>\n<p>Code: <code>{code}</code></p>\n</main>\n</body>\n</html>\n"
    )
}

/// The problem document for a refusal axum or a tower layer made itself.
fn framework_refusal(status: StatusCode) -> Option<ApiError> {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => Some(ApiError::new(
            status,
            ErrorCode::BodyTooLarge,
            "The request body is too large.",
        )),
        StatusCode::METHOD_NOT_ALLOWED => Some(ApiError::new(
            status,
            ErrorCode::MethodNotAllowed,
            "This endpoint does not answer this method.",
        )),
        _ => None,
    }
}

/// Layer: turns the framework's own refusals into problem documents, and
/// renders problem documents as pages for requests that prefer HTML.
pub(crate) async fn negotiate(req: Request, next: Next) -> Response {
    let html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(prefers_html);
    let mut resp = next.run(req).await;
    if resp.extensions().get::<Problem>().is_none()
        && let Some(refusal) = framework_refusal(resp.status())
    {
        // Keep the headers the layers set (request id, security headers).
        let headers = std::mem::take(resp.headers_mut());
        resp = refusal.into_response();
        for (name, value) in &headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                resp.headers_mut().entry(name).or_insert(value.clone());
            }
        }
    }
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept"));
    let page = match resp.extensions().get::<Problem>() {
        Some(p) if html => render(&p.title, &p.detail, p.code.as_str()),
        _ => return resp,
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(page))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_value_is_never_read_for_placeholders() {
        let page = super::fill(
            "<h1>{{client}}</h1><input value=\"{{csrf}}\">{{unknown}}",
            &[("client", "{{csrf}} Agency"), ("csrf", "secret-token")],
        );
        assert_eq!(
            page,
            "<h1>{{csrf}} Agency</h1><input value=\"secret-token\">{{unknown}}"
        );
    }

    use super::*;

    #[test]
    fn browsers_get_pages_and_programs_get_json() {
        let chromium =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(prefers_html(chromium));
        assert!(prefers_html("text/html"));
        for program in [
            "*/*",
            "application/json",
            "application/problem+json, text/html;q=0.5",
            "text/html;q=0.5, */*",
            "",
            "text/html;q=0",
        ] {
            assert!(!prefers_html(program), "{program}");
        }
    }

    #[test]
    fn the_page_escapes_what_it_shows() {
        let page = render("Bad Request", "name <b>&</b> \"x\"", "invalid_name");
        assert!(page.contains("name &lt;b&gt;&amp;&lt;/b&gt; &quot;x&quot;"));
        assert!(!page.contains("<b>"));
        assert!(!page.contains("<script") && !page.contains("style="));
    }
}
