//! The SOAP 1.2 shape of `CheckCardByLaser`: building and reading envelopes.
//!
//! Shared by the HTTP connector (builds requests, reads responses) and the
//! local stand-in (reads requests, builds responses), so both speak exactly one
//! dialect. Every value written is XML-escaped. The reader is strict and
//! bounded: no DTDs, no entities beyond XML's five and character references,
//! limited depth, element count and size; anything else is malformed.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;

use crate::card_status::{CardStatusQuery, RegistryRawAnswer};

/// The SOAP 1.2 envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// Default service namespace (the ASP.NET web-service default). Take the real
/// one from the WSDL the registry operator provides.
pub const DEFAULT_SERVICE_NS: &str = "http://tempuri.org/";
/// The operation name.
pub const OPERATION: &str = "CheckCardByLaser";
/// Largest body either side reads, in bytes. A real answer is well under 1 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const MAX_DEPTH: usize = 16;
const MAX_ELEMENTS: usize = 256;

/// Why an envelope could not be read. The fault is the peer's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    /// Not well-formed XML, a DTD, an unknown entity, or too deep or large.
    #[error("malformed XML")]
    Malformed,
    /// Well-formed but not a SOAP envelope.
    #[error("not a SOAP envelope")]
    NotSoap,
    /// A SOAP fault instead of a result.
    #[error("SOAP fault")]
    Fault,
    /// The expected operation element is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field appears twice; refusing to guess which counts.
    #[error("duplicate field {0}")]
    Duplicate(String),
}

/// The SOAP 1.2 `Content-Type` for the operation, with its `action` parameter.
pub fn content_type(service_ns: &str) -> String {
    format!("application/soap+xml; charset=utf-8; action=\"{service_ns}{OPERATION}\"")
}

fn element(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(value));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn envelope(inner: impl FnOnce(&mut String)) -> String {
    let mut s = String::with_capacity(512);
    s.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    s.push_str("<soap12:Envelope xmlns:soap12=\"");
    s.push_str(SOAP12_NS);
    s.push_str("\"><soap12:Body>");
    inner(&mut s);
    s.push_str("</soap12:Body></soap12:Envelope>");
    s
}

/// The request envelope for a query.
pub fn request_envelope(service_ns: &str, q: &CardStatusQuery) -> String {
    envelope(|s| {
        s.push('<');
        s.push_str(OPERATION);
        s.push_str(" xmlns=\"");
        s.push_str(&escape(service_ns));
        s.push_str("\">");
        element(s, "PID", &q.pid);
        element(s, "FirstName", &q.first_name);
        element(s, "LastName", &q.last_name);
        element(s, "BirthDay", &q.birth_day);
        element(s, "Laser", &q.laser);
        s.push_str("</");
        s.push_str(OPERATION);
        s.push('>');
    })
}

/// The response envelope carrying a raw answer (used by the stand-in).
pub fn response_envelope(service_ns: &str, raw: &RegistryRawAnswer) -> String {
    envelope(|s| {
        s.push_str("<CheckCardByLaserResponse xmlns=\"");
        s.push_str(&escape(service_ns));
        s.push_str("\"><CheckCardByLaserResult>");
        element(
            s,
            "IsError",
            if raw.is_error.unwrap_or(true) {
                "true"
            } else {
                "false"
            },
        );
        element(
            s,
            "ErrorMessage",
            raw.error_message.as_deref().unwrap_or(""),
        );
        element(
            s,
            "Code",
            &raw.code.map(|c| c.to_string()).unwrap_or_default(),
        );
        element(s, "Desc", raw.desc.as_deref().unwrap_or(""));
        s.push_str("</CheckCardByLaserResult></CheckCardByLaserResponse>");
    })
}

/// Reads the request fields (used by the stand-in). Missing fields come back
/// empty, so the registry can answer "incomplete" as DOPA does.
pub fn parse_request(xml: &str) -> Result<CardStatusQuery, SoapError> {
    let mut f = read_fields(xml, &["Envelope", "Body", OPERATION], OPERATION)?;
    let mut take = |k: &str| f.remove(k).unwrap_or_default();
    Ok(CardStatusQuery {
        pid: take("PID"),
        first_name: take("FirstName"),
        last_name: take("LastName"),
        birth_day: take("BirthDay"),
        laser: take("Laser"),
    })
}

/// Reads a response's `IsError`, `ErrorMessage`, `Code` and `Desc`. Values that
/// do not parse are left `None`, which [`crate::card_status::interpret_dopa`]
/// treats as unavailable.
pub fn parse_response(xml: &str) -> Result<RegistryRawAnswer, SoapError> {
    let mut f = read_fields(
        xml,
        &[
            "Envelope",
            "Body",
            "CheckCardByLaserResponse",
            "CheckCardByLaserResult",
        ],
        "CheckCardByLaserResult",
    )?;
    let non_empty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let is_error = f
        .remove("IsError")
        .and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        });
    let code = f.remove("Code").and_then(|v| v.trim().parse::<i64>().ok());
    Ok(RegistryRawAnswer {
        is_error,
        error_message: non_empty(f.remove("ErrorMessage")),
        code,
        desc: non_empty(f.remove("Desc")),
        http_status: None,
    })
}

/// Collects the text of each direct child of the element at `container` (a
/// path of local names from the root).
fn read_fields(
    xml: &str,
    container: &[&str],
    container_name: &'static str,
) -> Result<BTreeMap<String, String>, SoapError> {
    if xml.len() > MAX_BODY_BYTES {
        return Err(SoapError::Malformed);
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    reader.config_mut().check_end_names = true;

    let mut path: Vec<String> = Vec::new();
    let mut fields = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut seen_container = false;
    let mut elements = 0usize;
    let in_container = |path: &[String]| {
        path.len() == container.len() && path.iter().zip(container).all(|(a, b)| a == b)
    };

    loop {
        match reader.read_event().map_err(|_| SoapError::Malformed)? {
            Event::Start(e) => {
                elements += 1;
                if elements > MAX_ELEMENTS || path.len() >= MAX_DEPTH {
                    return Err(SoapError::Malformed);
                }
                let name = std::str::from_utf8(e.local_name().into_inner())
                    .map_err(|_| SoapError::Malformed)?
                    .to_owned();
                if path.is_empty() && name != "Envelope" {
                    return Err(SoapError::NotSoap);
                }
                if path.len() == 2 && path[0] == "Envelope" && path[1] == "Body" && name == "Fault"
                {
                    return Err(SoapError::Fault);
                }
                if in_container(&path) {
                    current = Some(String::new());
                }
                path.push(name);
                if in_container(&path) {
                    seen_container = true;
                }
            }
            Event::End(_) => {
                let name = path.pop().ok_or(SoapError::Malformed)?;
                if in_container(&path) {
                    let value = current.take().unwrap_or_default();
                    if fields.insert(name.clone(), value).is_some() {
                        return Err(SoapError::Duplicate(name));
                    }
                }
            }
            Event::Text(t) => {
                if let Some(cur) = current
                    .as_mut()
                    .filter(|_| path.len() == container.len() + 1)
                {
                    cur.push_str(&t.xml_content().map_err(|_| SoapError::Malformed)?);
                }
            }
            Event::CData(c) => {
                if let Some(cur) = current
                    .as_mut()
                    .filter(|_| path.len() == container.len() + 1)
                {
                    cur.push_str(&c.decode().map_err(|_| SoapError::Malformed)?);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|_| SoapError::Malformed)? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|_| SoapError::Malformed)?;
                        resolve_predefined_entity(&name)
                            .ok_or(SoapError::Malformed)?
                            .to_owned()
                    }
                };
                if let Some(cur) = current
                    .as_mut()
                    .filter(|_| path.len() == container.len() + 1)
                {
                    cur.push_str(&resolved);
                }
            }
            Event::DocType(_) => return Err(SoapError::Malformed),
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(SoapError::Malformed);
    }
    if !seen_container {
        return Err(SoapError::Missing(container_name));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn query() -> CardStatusQuery {
        CardStatusQuery {
            pid: "1999000000017".into(),
            first_name: "สมชาย".into(),
            last_name: "<ใจดี & \"co\">".into(),
            birth_day: "25070222".into(),
            laser: "JT0123456789".into(),
        }
    }

    #[test]
    fn request_round_trips_with_escaping() {
        let xml = request_envelope(DEFAULT_SERVICE_NS, &query());
        assert!(xml.contains("&lt;ใจดี &amp; &quot;co&quot;&gt;"));
        assert!(!xml.contains("<ใจดี"));
        assert_eq!(parse_request(&xml).unwrap(), query());
    }

    #[test]
    fn response_round_trips() {
        let raw = RegistryRawAnswer {
            is_error: Some(false),
            error_message: None,
            code: Some(4),
            desc: Some("ไม่พบ <x>".into()),
            http_status: None,
        };
        let xml = response_envelope(DEFAULT_SERVICE_NS, &raw);
        assert_eq!(parse_response(&xml).unwrap(), raw);
    }

    #[test]
    fn reads_prefixed_and_self_closing_forms() {
        let xml = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>
  <r:CheckCardByLaserResponse xmlns:r="http://tempuri.org/">
    <r:CheckCardByLaserResult>
      <r:IsError>False</r:IsError><r:ErrorMessage/><r:Code> 0 </r:Code><r:Desc>&#x0E2A;&amp;ok</r:Desc>
    </r:CheckCardByLaserResult>
  </r:CheckCardByLaserResponse>
</s:Body></s:Envelope>"#;
        let raw = parse_response(xml).unwrap();
        assert_eq!(raw.is_error, Some(false));
        assert_eq!(raw.code, Some(0));
        assert_eq!(raw.error_message, None);
        assert_eq!(raw.desc.as_deref(), Some("ส&ok"));
    }

    #[test]
    fn hostile_or_odd_bodies_are_refused() {
        assert_eq!(parse_response("<html>oops</html>"), Err(SoapError::NotSoap));
        assert_eq!(
            parse_response("not xml at all <<<"),
            Err(SoapError::Malformed)
        );
        assert_eq!(
            parse_response("<Envelope><Body><CheckCardByLaserResponse>"),
            Err(SoapError::Malformed)
        );
        assert_eq!(
            parse_response("<Envelope><Body><Fault><Reason>x</Reason></Fault></Body></Envelope>"),
            Err(SoapError::Fault)
        );
        assert_eq!(
            parse_response("<Envelope><Body><Other/></Body></Envelope>"),
            Err(SoapError::Missing("CheckCardByLaserResult"))
        );
        let dtd = r#"<!DOCTYPE x [<!ENTITY e "boom">]><Envelope><Body/></Envelope>"#;
        assert_eq!(parse_response(dtd), Err(SoapError::Malformed));
        let unknown_entity = "<Envelope><Body><CheckCardByLaserResponse><CheckCardByLaserResult><Code>&e;</Code></CheckCardByLaserResult></CheckCardByLaserResponse></Body></Envelope>";
        assert_eq!(parse_response(unknown_entity), Err(SoapError::Malformed));
        let dup = "<Envelope><Body><CheckCardByLaserResponse><CheckCardByLaserResult><Code>4</Code><Code>0</Code></CheckCardByLaserResult></CheckCardByLaserResponse></Body></Envelope>";
        assert_eq!(
            parse_response(dup),
            Err(SoapError::Duplicate("Code".into()))
        );
        let deep = format!(
            "<Envelope>{}{}</Envelope>",
            "<a>".repeat(40),
            "</a>".repeat(40)
        );
        assert_eq!(parse_response(&deep), Err(SoapError::Malformed));
        assert_eq!(
            parse_response(&"x".repeat(MAX_BODY_BYTES + 1)),
            Err(SoapError::Malformed)
        );
    }
}
