//! XAdES enveloped signatures judged by peers nobody here wrote: xmlsec1
//! (libxmlsec1) verifies the signature and the certificate chain to
//! Tuaton's root, and Python's signxml verifies it as XAdES (the signed
//! properties, the signing certificate's digest). A changed byte of the
//! invoice fails both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ::time::OffsetDateTime;
use tuaton_sign::xades::{XadesOptions, sign_enveloped};

mod common;
use common::{Tsa, python};

fn fixture() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/etax-invoice.xml"),
    )
    .unwrap()
}

fn output(mut command: Command) -> (bool, String) {
    let out = command
        .output()
        .expect("xmlsec1 and signxml are installed (scripts/install-test-deps)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn xmlsec1(t: &Tsa, file: &Path) -> (bool, String) {
    let mut c = Command::new("xmlsec1");
    c.args(["--verify", "--trusted-pem"])
        .arg(&t.root)
        .args([
            "--id-attr:Id",
            "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
        ])
        .arg(file)
        .current_dir(t.dir.path());
    output(c)
}

/// signxml's XAdES verifier, Tuaton's root its only anchor; prints the
/// signing time it read.
fn signxml(t: &Tsa, file: &Path) -> (bool, String) {
    let script = r#"
import sys
from signxml.xades import XAdESVerifier
data = open(sys.argv[1], "rb").read()
results = XAdESVerifier().verify(data, ca_pem_file=sys.argv[2], expect_references=2)
for r in results:
    props = getattr(r, "signed_properties", None)
    print("verified", props is not None)
"#;
    let mut c = Command::new(python());
    c.args(["-c", script])
        .arg(file)
        .arg(&t.root)
        .current_dir(t.dir.path());
    output(c)
}

fn sign(t: &Tsa, name: &str, stamped: bool) -> (PathBuf, Vec<u8>) {
    let signed = sign_enveloped(
        &t.signer,
        &fixture(),
        XadesOptions {
            signing_time: OffsetDateTime::now_utc(),
            time_stamp: if stamped { Some(&t.stamper) } else { None },
        },
    )
    .unwrap();
    let path = t.dir.path().join(name);
    std::fs::write(&path, &signed).unwrap();
    (path, signed)
}

#[test]
fn an_e_tax_invoice_signed_b_b_and_b_t_verifies_in_xmlsec1_and_signxml() {
    let t = common::tsa();
    for (name, stamped) in [("invoice-b-b.xml", false), ("invoice-b-t.xml", true)] {
        let (path, signed) = sign(&t, name, stamped);
        let text = String::from_utf8(signed).unwrap();
        assert_eq!(
            text.contains("<xades:EncapsulatedTimeStamp>"),
            stamped,
            "{name}"
        );
        let (ok, out) = xmlsec1(&t, &path);
        assert!(ok && out.contains("OK"), "xmlsec1 refused {name}:\n{out}");
        let (ok, out) = signxml(&t, &path);
        assert!(
            ok && out.contains("verified True"),
            "signxml refused {name}:\n{out}"
        );
        if stamped {
            time_stamp_verifies(&t, &path);
        }
    }
}

/// B-T: the time stamp is over the exclusive-canonical `SignatureValue`
/// (lxml canonicalises it, openssl checks the token).
fn time_stamp_verifies(t: &Tsa, signed: &Path) {
    let script = r#"
import base64, hashlib, sys
from lxml import etree
ns = {"ds": "http://www.w3.org/2000/09/xmldsig#", "xades": "http://uri.etsi.org/01903/v1.3.2#"}
doc = etree.parse(sys.argv[1])
value = doc.find(".//ds:SignatureValue", ns)
print(hashlib.sha256(etree.tostring(value, method="c14n", exclusive=True)).hexdigest())
token = doc.find(".//xades:EncapsulatedTimeStamp", ns).text
open(sys.argv[2], "wb").write(base64.b64decode(token))
"#;
    let token = t.dir.path().join("token.der");
    let mut c = Command::new(python());
    c.args(["-c", script]).arg(signed).arg(&token);
    let (ok, digest) = output(c);
    assert!(ok, "{digest}");
    let mut c = Command::new("openssl");
    c.args(["ts", "-verify", "-token_in", "-in"])
        .arg(&token)
        .args(["-digest", digest.trim(), "-CAfile"])
        .arg(&t.root)
        .arg("-untrusted")
        .arg(&t.untrusted);
    let (ok, out) = output(c);
    assert!(ok && out.contains("Verification: OK"), "{out}");
}

#[test]
fn a_changed_byte_of_the_invoice_fails_both() {
    let t = common::tsa();
    let (_, signed) = sign(&t, "invoice.xml", true);
    let text = String::from_utf8(signed).unwrap();
    for (what, from, to) in [
        ("the total", "1070.00", "9070.00"),
        ("the buyer", "สมชาย ใจดี", "สมหญิง ใจดี"),
        (
            "the signing time",
            "<xades:SigningTime>20",
            "<xades:SigningTime>19",
        ),
    ] {
        let changed = text.replacen(from, to, 1);
        assert_ne!(changed, text, "{what}");
        let path = t.dir.path().join("changed.xml");
        std::fs::write(&path, &changed).unwrap();
        let (ok, out) = xmlsec1(&t, &path);
        assert!(!ok, "xmlsec1 accepted a change to {what}:\n{out}");
        let (ok, out) = signxml(&t, &path);
        assert!(!ok, "signxml accepted a change to {what}:\n{out}");
    }
}

#[test]
fn what_is_not_xml_is_refused_with_a_reason() {
    let t = common::tsa();
    for bad in [
        &b"not xml"[..],
        b"<a><b></a>",
        b"\xff\xfe<a/>",
        b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
    ] {
        let err = sign_enveloped(
            &t.signer,
            bad,
            XadesOptions {
                signing_time: OffsetDateTime::now_utc(),
                time_stamp: None,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("XML"), "{err}");
    }
    // Another declared encoding, and a document too large, are refused.
    for bad in [
        "<?xml version=\"1.0\" encoding=\"TIS-620\"?><a/>"
            .as_bytes()
            .to_vec(),
        format!("<a>{}</a>", "x".repeat(tuaton_sign::xades::MAX_XML_BYTES)).into_bytes(),
    ] {
        assert!(
            sign_enveloped(
                &t.signer,
                &bad,
                XadesOptions {
                    signing_time: OffsetDateTime::now_utc(),
                    time_stamp: None,
                },
            )
            .is_err()
        );
    }
    // A namespace used only inside text is signed too: re-binding it after
    // the signing breaks the signature.
    let typed = sign_enveloped(
        &t.signer,
        br#"<r xmlns:t="urn:etda:types"><amount kind="t:THB">1070.00</amount></r>"#,
        XadesOptions {
            signing_time: OffsetDateTime::now_utc(),
            time_stamp: None,
        },
    )
    .unwrap();
    let path = t.dir.path().join("typed.xml");
    std::fs::write(&path, &typed).unwrap();
    assert!(xmlsec1(&t, &path).0);
    let rebound = String::from_utf8(typed)
        .unwrap()
        .replacen("urn:etda:types", "urn:other", 1);
    std::fs::write(&path, rebound).unwrap();
    let (ok, out) = xmlsec1(&t, &path);
    assert!(!ok, "a re-bound namespace passed:\n{out}");

    // An empty root element is signed too.
    let signed = sign_enveloped(
        &t.signer,
        b"<receipt xmlns=\"urn:example\"/>",
        XadesOptions {
            signing_time: OffsetDateTime::now_utc(),
            time_stamp: None,
        },
    )
    .unwrap();
    let path = t.dir.path().join("empty.xml");
    std::fs::write(&path, &signed).unwrap();
    let (ok, out) = xmlsec1(&t, &path);
    assert!(ok, "{out}");
}
