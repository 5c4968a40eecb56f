//! The few DER structures this crate needs: SubjectPublicKeyInfo, RSA public
//! keys and ECDSA signatures. Small enough that a general ASN.1 library would
//! cost more than it saves.

use crate::algorithm::KeySpec;

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_SEQUENCE: u8 = 0x30;

/// DER of OID 1.2.840.10045.2.1 (id-ecPublicKey).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of OID 1.2.840.10045.3.1.7 (secp256r1).
pub(crate) const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of OID 1.3.132.0.34 (secp384r1).
pub(crate) const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of OID 1.3.101.112 (id-Ed25519).
pub(crate) const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER of OID 1.2.840.113549.1.1.1 (rsaEncryption).
const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// Encodes one tag-length-value.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Reads one tag-length-value; returns (tag, content, rest).
pub(crate) fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Encodes an unsigned big-endian integer as a DER INTEGER.
pub(crate) fn uint(be: &[u8]) -> Vec<u8> {
    let skip = be.iter().take_while(|b| **b == 0).count();
    let trimmed = &be[skip..];
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(TAG_INTEGER, &content)
}

/// Strips the sign byte from a DER INTEGER's content.
fn uint_content(content: &[u8]) -> &[u8] {
    match content {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => content,
    }
}

/// Builds `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }`.
pub(crate) fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut body = uint(modulus);
    body.extend(uint(exponent));
    tlv(TAG_SEQUENCE, &body)
}

/// Splits an `RSAPublicKey` into (modulus, exponent), unsigned big-endian.
pub(crate) fn parse_rsa_public_key(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = read_tlv(der)?;
    if tag != TAG_SEQUENCE || !rest.is_empty() {
        return None;
    }
    let (t1, n, body) = read_tlv(body)?;
    let (t2, e, body) = read_tlv(body)?;
    if t1 != TAG_INTEGER || t2 != TAG_INTEGER || !body.is_empty() {
        return None;
    }
    Some((uint_content(n), uint_content(e)))
}

/// Builds a SubjectPublicKeyInfo from the raw public key as ring exposes it:
/// an uncompressed point (EC), 32 bytes (Ed25519), or `RSAPublicKey` DER.
pub(crate) fn spki(spec: KeySpec, raw: &[u8]) -> Vec<u8> {
    let alg_id = match spec {
        KeySpec::EcP256 => [OID_EC_PUBLIC_KEY, OID_P256].concat(),
        KeySpec::EcP384 => [OID_EC_PUBLIC_KEY, OID_P384].concat(),
        KeySpec::Ed25519 => OID_ED25519.to_vec(),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            [OID_RSA_ENCRYPTION, &[TAG_NULL, 0]].concat()
        }
    };
    let mut bits = Vec::with_capacity(raw.len() + 1);
    bits.push(0);
    bits.extend_from_slice(raw);
    let mut body = tlv(TAG_SEQUENCE, &alg_id);
    body.extend(tlv(TAG_BIT_STRING, &bits));
    tlv(TAG_SEQUENCE, &body)
}

/// Unwraps a DER OCTET STRING if `input` is exactly one; PKCS#11 modules
/// disagree on whether CKA_EC_POINT is wrapped.
pub(crate) fn unwrap_octet_string(input: &[u8], expected_len: usize) -> Option<&[u8]> {
    if input.len() == expected_len {
        return Some(input);
    }
    match read_tlv(input)? {
        (TAG_OCTET_STRING, content, []) if content.len() == expected_len => Some(content),
        _ => None,
    }
}

/// Converts a fixed-length ECDSA `r || s` into DER.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = uint(r);
    body.extend(uint(s));
    Some(tlv(TAG_SEQUENCE, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_get_a_sign_byte_only_when_needed() {
        assert_eq!(uint(&[0x00, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[0, 0]), vec![0x02, 0x01, 0x00]);
    }

    #[test]
    fn long_lengths_round_trip() {
        let content = vec![7u8; 300];
        let enc = tlv(TAG_OCTET_STRING, &content);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, body, rest) = read_tlv(&enc).unwrap_or((0, &[], &[1]));
        assert_eq!((tag, body, rest.len()), (TAG_OCTET_STRING, &content[..], 0));
    }

    #[test]
    fn rsa_public_key_round_trips() {
        let n = [0xc1u8; 256];
        let der = rsa_public_key(&n, &[1, 0, 1]);
        let (n2, e2) = parse_rsa_public_key(&der).unwrap_or((&[], &[]));
        assert_eq!((n2, e2), (&n[..], &[1u8, 0, 1][..]));
    }

    #[test]
    fn truncated_input_is_rejected() {
        assert!(read_tlv(&[0x30, 0x05, 0x01]).is_none());
        assert!(read_tlv(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
    }
}
