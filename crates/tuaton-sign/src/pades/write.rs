//! Writing PDF syntax (ISO 32000-1 §7.3) for the objects an incremental
//! update adds or replaces. Written by hand: the objects are few and their
//! bytes must be exact, since the signature's `/ByteRange` is patched in
//! place.

use lopdf::{Dictionary, Object};

use crate::SignError;

/// Appends `value`. Streams are never rewritten by a signature, so one
/// here is refused.
pub(super) fn object(out: &mut Vec<u8>, value: &Object) -> Result<(), SignError> {
    match value {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Object::Real(n) => number(out, *n),
        Object::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Object::String(s, _) => hex_string(out, s),
        Object::Stream(_) => {
            return Err(SignError::Document(
                "the PDF holds a stream where a dictionary or array belongs".into(),
            ));
        }
        Object::Dictionary(d) => dictionary(out, d)?,
        Object::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                object(out, item)?;
            }
            out.push(b']');
        }
        Object::Reference((id, gen_nr)) => reference(out, *id, *gen_nr),
        Object::Name(n) => name(out, n),
    }
    Ok(())
}

/// Appends a dictionary, its entries in their order.
pub(super) fn dictionary(out: &mut Vec<u8>, dict: &Dictionary) -> Result<(), SignError> {
    out.extend_from_slice(b"<<");
    for (key, value) in dict.iter() {
        name(out, key);
        out.push(b' ');
        object(out, value)?;
    }
    out.extend_from_slice(b">>");
    Ok(())
}

/// `id gen R`.
pub(super) fn reference(out: &mut Vec<u8>, id: u32, gen_nr: u16) {
    out.extend_from_slice(format!("{id} {gen_nr} R").as_bytes());
}

/// A name, with `#xx` for every byte outside the regular characters
/// (ISO 32000-1 §7.3.5).
pub(super) fn name(out: &mut Vec<u8>, name: &[u8]) {
    out.push(b'/');
    for &b in name {
        let regular = (0x21..=0x7e).contains(&b) && !b"()<>[]{}/%#".contains(&b);
        if regular {
            out.push(b);
        } else {
            out.extend_from_slice(format!("#{b:02X}").as_bytes());
        }
    }
}

/// A real number without an exponent, which PDF does not have.
pub(super) fn number(out: &mut Vec<u8>, n: f32) {
    if !n.is_finite() {
        out.push(b'0');
        return;
    }
    if n.fract() == 0.0 && n.abs() < 1e9 {
        out.extend_from_slice(format!("{}", n as i64).as_bytes());
        return;
    }
    let text = format!("{n:.5}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    out.extend_from_slice(text.as_bytes());
}

/// A string as hexadecimal, which needs no escaping.
pub(super) fn hex_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'<');
    out.extend_from_slice(hex::encode_upper(bytes).as_bytes());
    out.push(b'>');
}

/// A text string (ISO 32000-1 §7.9.2.2): ASCII as it is, anything else
/// (a Thai name) as UTF-16BE with its byte-order mark.
pub(super) fn text_string(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        hex_string(out, text.as_bytes());
    } else {
        let mut bytes = vec![0xfe, 0xff];
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        hex_string(out, &bytes);
    }
}

/// A PDF date (ISO 32000-1 §7.9.4) in UTC.
pub(super) fn date(at: time::OffsetDateTime) -> String {
    crate::format_utc(
        at,
        time::macros::format_description!("D:[year][month][day][hour][minute][second]+00'00'"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_delimiters_and_non_ascii() {
        let mut out = Vec::new();
        name(&mut out, "A B#(é".as_bytes());
        assert_eq!(out, b"/A#20B#23#28#C3#A9");
    }

    #[test]
    fn numbers_have_no_exponent() {
        for (n, text) in [
            (0.000_01f32, "0.00001"),
            (595.0, "595"),
            (-12.5, "-12.5"),
            (1e20, "100000002004087734272"),
        ] {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), text, "{n}");
        }
    }

    #[test]
    fn thai_text_is_utf16() {
        let mut out = Vec::new();
        text_string(&mut out, "ก");
        assert_eq!(out, b"<FEFF0E01>");
    }
}
