//! PAdES signatures judged by peers nobody here wrote: pyHanko (`pyhanko
//! sign validate`, Tuaton's root as the trust anchor, the time stamp
//! included) and poppler's `pdfsig`, on PDFs that qpdf wrote, with a
//! cross-reference table and with cross-reference streams. A changed byte
//! inside the signed range fails both; files that cannot be signed are
//! refused with a reason and no panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ::time::OffsetDateTime;
use tuaton_sign::pades::{self, Appearance, Certification, PdfOptions};

mod common;
use common::{Tsa, classic_pdf, python, run, tsa};

/// A one-page PDF written by hand, then rewritten by qpdf with `args`
/// (qpdf fixes the offsets and chooses the cross-reference kind).
fn qpdf_file(t: &Tsa, name: &str, pages: usize, args: &[&str]) -> PathBuf {
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objects = vec![
        "<</Type/Catalog/Pages 2 0 R>>".to_string(),
        format!("<</Type/Pages/Kids[{}]/Count {pages}>>", kids.join(" ")),
        "<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>".to_string(),
    ];
    for i in 0..pages {
        let text = format!(
            "BT /F1 24 Tf 72 720 Td (Page {} of an agency form) Tj ET",
            i + 1
        );
        objects.push(format!(
            "<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents {} 0 R/Resources<</Font<</F1 3 0 R>>>>>>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<</Length {}>>\nstream\n{text}\nendstream",
            text.len()
        ));
    }
    let pdf = classic_pdf(
        &objects
            .into_iter()
            .map(String::into_bytes)
            .collect::<Vec<_>>(),
    );
    let raw = t.dir.path().join(format!("{name}.raw.pdf"));
    std::fs::write(&raw, &pdf).unwrap();
    let out = t.dir.path().join(format!("{name}.pdf"));
    let status = Command::new("qpdf")
        .args(args)
        .arg(&raw)
        .arg(&out)
        .status()
        .expect("qpdf is installed (scripts/install-test-deps)");
    assert!(status.success(), "qpdf {args:?}");
    out
}

/// pyHanko's judgement of every signature in `file`, trusting only
/// Tuaton's root. Revocation is not checked: these certificates name a
/// service that is not running.
fn pyhanko(t: &Tsa, file: &Path) -> (bool, String) {
    let root = t.root.to_str().unwrap();
    run(
        &python(),
        &[
            "-m",
            "pyhanko",
            "sign",
            "validate",
            "--pretty-print",
            "--no-revocation-check",
            "--trust-replace",
            "--trust",
            root,
            file.to_str().unwrap(),
        ],
        t.dir.path(),
    )
}

/// poppler's judgement (`pdfsig`): the signatures' cryptographic validity;
/// trust is pyHanko's part.
fn pdfsig(t: &Tsa, file: &Path) -> (bool, String) {
    run(Path::new("pdfsig"), &[file.to_str().unwrap()], t.dir.path())
}

fn options(at: OffsetDateTime) -> PdfOptions {
    PdfOptions {
        signing_time: at,
        signer_name: "สมชาย ใจดี (Somchai Jaidee)".into(),
        reason: Some("I approve this form".into()),
        location: Some("Bangkok".into()),
        appearance: None,
        certify: None,
    }
}

fn sign(t: &Tsa, input: &Path, output: &str, options: &PdfOptions, stamped: bool) -> PathBuf {
    let pdf = std::fs::read(input).unwrap();
    let signed = pades::sign(
        &t.signer,
        pdf,
        options,
        if stamped { Some(&t.stamper) } else { None },
    )
    .unwrap();
    let out = t.dir.path().join(output);
    std::fs::write(&out, signed.into_vec()).unwrap();
    out
}

/// Every signature pyHanko lists is intact, valid and trusted, and there
/// are `count` of them.
fn assert_pyhanko_accepts(t: &Tsa, file: &Path, count: usize) -> String {
    let (ok, out) = pyhanko(t, file);
    assert!(ok, "pyHanko refused {}:\n{out}", file.display());
    assert_eq!(
        out.matches("The signature is judged VALID").count(),
        count,
        "{out}"
    );
    out
}

fn assert_pdfsig_accepts(t: &Tsa, file: &Path, count: usize) -> String {
    let (ok, out) = pdfsig(t, file);
    assert!(ok, "pdfsig refused {}:\n{out}", file.display());
    assert_eq!(
        out.matches("Signature Validation: Signature is Valid.")
            .count(),
        count,
        "{out}"
    );
    out
}

#[test]
fn an_invisible_b_t_signature_on_a_table_pdf_validates_in_pyhanko_and_pdfsig() {
    let t = tsa();
    let input = qpdf_file(&t, "table", 1, &["--object-streams=disable"]);
    let before = std::fs::read(&input).unwrap();
    let now = OffsetDateTime::now_utc();
    let signed = sign(&t, &input, "table-signed.pdf", &options(now), true);
    let after = std::fs::read(&signed).unwrap();
    // An incremental update: the file as it was, then more.
    assert!(after.starts_with(&before));

    let out = assert_pyhanko_accepts(&t, &signed, 1);
    assert!(out.contains("timestamp token"), "{out}");
    assert!(
        out.contains("ENTIRE_FILE") || out.contains("entire file"),
        "{out}"
    );
    let out = assert_pdfsig_accepts(&t, &signed, 1);
    assert!(out.contains("Total document signed"), "{out}");
    assert!(out.contains("ETSI.CAdES.detached"), "{out}");
}

#[test]
fn a_visible_certified_signature_and_a_second_on_a_stream_pdf_both_validate() {
    let t = tsa();
    let input = qpdf_file(
        &t,
        "streams",
        2,
        &["--object-streams=generate", "--compress-streams=y"],
    );
    let raw = std::fs::read(&input).unwrap();
    assert!(
        raw.windows(10).any(|w| w == b"/Type/XRef") || raw.windows(11).any(|w| w == b"/Type /XRef"),
        "qpdf wrote a cross-reference stream"
    );
    let now = OffsetDateTime::now_utc();
    let mut first = options(now);
    first.appearance = Some(Appearance {
        page: 1,
        rect: [340.0, 60.0, 560.0, 120.0],
        lines: vec![
            "สมชาย ใจดี".into(),
            "Signed by Somchai Jaidee".into(),
            "2026-12-02 17:00 UTC".into(),
        ],
    });
    first.certify = Some(Certification::FormFilling);
    let once = sign(&t, &input, "streams-once.pdf", &first, false);
    assert_pyhanko_accepts(&t, &once, 1);
    assert_pdfsig_accepts(&t, &once, 1);

    let mut second = options(now + ::time::Duration::seconds(5));
    second.signer_name = "Director Two".into();
    let twice = sign(&t, &once, "streams-twice.pdf", &second, true);
    let out = assert_pyhanko_accepts(&t, &twice, 2);
    assert!(out.contains("Signature2"), "{out}");
    let out = assert_pdfsig_accepts(&t, &twice, 2);
    assert!(out.contains("Not total document signed"), "{out}");
    assert!(out.contains("Total document signed"), "{out}");

    // Tuaton reads both back, each over its own revision, by its signer.
    assert!(pades::signatures(&raw).unwrap().is_empty());
    let twice_bytes = std::fs::read(&twice).unwrap();
    let found = pades::signatures(&twice_bytes).unwrap();
    let ends: Vec<usize> = found.iter().map(|s| s.signed_len).collect();
    assert_eq!(
        ends,
        [
            std::fs::metadata(&once).unwrap().len() as usize,
            twice_bytes.len()
        ]
    );
    assert!(
        found
            .iter()
            .all(|s| s.certificate == t.signer.certificate_der())
    );

    // The visible signature is drawn: poppler renders its text.
    let (ok, text) = run(
        Path::new("pdftotext"),
        &["-f", "2", "-l", "2", twice.to_str().unwrap(), "-"],
        t.dir.path(),
    );
    assert!(ok, "{text}");
    assert!(text.contains("Signed by Somchai Jaidee"), "{text}");
    // The Thai name is drawn in the embedded Thai font, and reads back as
    // the name.
    assert!(text.contains("ใจดี"), "{text}");
    let (ok, fonts) = run(
        Path::new("pdffonts"),
        &["-f", "2", "-l", "2", twice.to_str().unwrap()],
        t.dir.path(),
    );
    assert!(ok, "{fonts}");
    let thai = fonts
        .lines()
        .find(|l| l.contains("NotoSansThai-Regular"))
        .unwrap_or_else(|| panic!("{fonts}"));
    assert!(
        thai.contains("CID TrueType") && thai.contains("yes"),
        "{fonts}"
    );

    // Certified against changes: another signature is refused.
    let mut locked = options(now);
    locked.certify = Some(Certification::NoChanges);
    let locked = sign(&t, &input, "locked.pdf", &locked, false);
    let err = pades::sign(&t.signer, std::fs::read(&locked).unwrap(), &second, None).unwrap_err();
    assert!(err.to_string().contains("certified"), "{err}");
    // Only the first signature may certify.
    let err = pades::sign(&t.signer, std::fs::read(&once).unwrap(), &first, None).unwrap_err();
    assert!(err.to_string().contains("first signature"), "{err}");
}

#[test]
fn a_changed_byte_inside_the_signed_range_fails_both_validators() {
    let t = tsa();
    let input = qpdf_file(
        &t,
        "flip",
        1,
        &["--object-streams=disable", "--compress-streams=n"],
    );
    let now = OffsetDateTime::now_utc();
    let signed = sign(&t, &input, "flip-signed.pdf", &options(now), true);
    let bytes = std::fs::read(&signed).unwrap();
    let find = |needle: &[u8]| {
        bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    // A byte of the page's text, one of the reason in the signature
    // dictionary, one of the update's cross-reference section, and (outside
    // the range, but no less fatal) one of the signature value itself.
    let text = find(b"Page 1 of an agency form") + 5;
    let reason = find(b"/Reason<") + 9;
    let xref = bytes.len() - 60;
    let value = signature_value(&bytes);
    let value = find(hex::encode_upper(&value).as_bytes()) + value.len();
    for (what, at) in [
        ("the page text", text),
        ("the reason", reason),
        ("the cross-reference section", xref),
        ("the signature value", value),
    ] {
        let mut changed = bytes.clone();
        changed[at] = if changed[at] == b'1' { b'2' } else { b'1' };
        let file = t.dir.path().join("changed.pdf");
        std::fs::write(&file, &changed).unwrap();
        let (ok, out) = pyhanko(&t, &file);
        assert!(
            !ok || !out.contains("The signature is judged VALID"),
            "pyHanko accepted a change to {what}:\n{out}"
        );
        let (_, out) = pdfsig(&t, &file);
        assert!(
            !out.contains("Signature is Valid."),
            "pdfsig accepted a change to {what}:\n{out}"
        );
        assert!(
            pades::signatures(&changed).is_err(),
            "Tuaton read back a signature over a change to {what}"
        );
    }
    assert_eq!(pades::signatures(&bytes).unwrap().len(), 1);
}

/// The signature value in the first signature's CMS.
fn signature_value(pdf: &[u8]) -> Vec<u8> {
    use der::Decode as _;
    let start = pdf.windows(10).position(|w| w == b"/Contents<").unwrap() + 10;
    let end = start + pdf[start..].iter().position(|b| *b == b'>').unwrap();
    let der = hex::decode(&pdf[start..end]).unwrap();
    let info = cms::content_info::ContentInfo::from_der(
        &der[..der.len() - der.iter().rev().take_while(|b| **b == 0).count()],
    )
    .unwrap();
    let signed: cms::signed_data::SignedData = info.content.decode_as().unwrap();
    signed.signer_infos.0.as_slice()[0]
        .signature
        .as_bytes()
        .to_vec()
}

#[test]
fn the_same_file_and_options_prepare_the_same_bytes_and_facts_are_read() {
    let t = tsa();
    let input = std::fs::read(qpdf_file(&t, "same", 3, &["--object-streams=generate"])).unwrap();
    let now = OffsetDateTime::now_utc();
    let a = pades::prepare(input.clone(), &options(now)).unwrap();
    let b = pades::prepare(input.clone(), &options(now)).unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.pages(), 3);
    assert_eq!(a.field_name(), "Signature1");
    assert_eq!(
        a.original_sha256().to_vec(),
        ring::digest::digest(&ring::digest::SHA256, &input).as_ref()
    );
    let later =
        pades::prepare(input.clone(), &options(now + ::time::Duration::seconds(1))).unwrap();
    assert_ne!(a.digest(), later.digest());
    let facts = pades::inspect(&input).unwrap();
    assert_eq!(facts.pages, 3);
    assert_eq!(facts.signatures, 0);
    // A signature too large for its reserved room is refused.
    assert!(a.embed(&vec![0u8; pades::CONTENTS_BYTES + 1]).is_err());
}

#[test]
fn files_that_cannot_be_signed_are_refused_with_a_reason() {
    let t = tsa();
    let good = std::fs::read(qpdf_file(&t, "good", 1, &["--object-streams=disable"])).unwrap();
    let now = OffsetDateTime::now_utc();
    let refused = |bytes: Vec<u8>| {
        pades::prepare(bytes, &options(now))
            .expect_err("refused")
            .to_string()
    };
    assert!(refused(b"not a pdf at all".to_vec()).contains("PDF header"));
    // Cut short anywhere: an error, never a panic.
    for cut in [10, good.len() / 3, good.len() / 2, good.len() - 40] {
        let message = refused(good[..cut].to_vec());
        assert!(
            message.contains("cannot be read") || message.contains("damaged"),
            "{cut}: {message}"
        );
    }
    // A page the file does not have.
    let mut far = options(now);
    far.appearance = Some(Appearance {
        page: 4,
        rect: [0.0, 0.0, 100.0, 50.0],
        lines: vec!["x".into()],
    });
    let err = pades::prepare(good.clone(), &far).unwrap_err().to_string();
    assert!(err.contains("page 5"), "{err}");
    // A box too small to draw in.
    far.appearance = Some(Appearance {
        page: 0,
        rect: [10.0, 10.0, 10.0, 50.0],
        lines: vec!["x".into()],
    });
    assert!(pades::prepare(good.clone(), &far).is_err());
    // An encrypted file.
    let locked = t.dir.path().join("encrypted.pdf");
    let status = Command::new("qpdf")
        .args(["--encrypt", "user", "owner", "256", "--"])
        .arg(t.dir.path().join("good.pdf"))
        .arg(&locked)
        .status()
        .unwrap();
    assert!(status.success());
    let message = refused(std::fs::read(&locked).unwrap());
    assert!(
        message.contains("encrypted") || message.contains("cannot be read"),
        "{message}"
    );
}

/// `needle`'s first position in `hay`.
fn position(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

#[test]
fn the_newest_revision_of_a_page_is_the_one_signed() {
    // A form whose page was revised in an incremental update: the new
    // revision points the page at new text. The signature's update must
    // carry the revised page on, not bring back the old one.
    let t = tsa();
    let input = qpdf_file(
        &t,
        "revised",
        1,
        &["--object-streams=disable", "--compress-streams=n"],
    );
    let mut pdf = std::fs::read(&input).unwrap();
    let page_end = position(&pdf, b"/Type /Page >>");
    let page_start = pdf[..page_end]
        .windows(7)
        .rposition(|w| w == b" 0 obj\n")
        .unwrap();
    let number_start = pdf[..page_start].iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let page_id: u32 = std::str::from_utf8(&pdf[number_start..page_start])
        .unwrap()
        .parse()
        .unwrap();
    let dict_start = page_start + 7;
    let page_dict = String::from_utf8(pdf[dict_start..page_end + 14].to_vec()).unwrap();
    let size_at = position(&pdf, b"/Size ") + 6;
    let size: u32 = std::str::from_utf8(&pdf[size_at..])
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let prev_at = position(&pdf, b"startxref\n") + 10;
    let prev: usize = std::str::from_utf8(&pdf[prev_at..])
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let contents_at = page_dict.find("/Contents ").unwrap() + 10;
    let contents_end = contents_at + page_dict[contents_at..].find(" R").unwrap() + 2;
    let revised_page = format!(
        "{}{size} 0 R{}",
        &page_dict[..contents_at],
        &page_dict[contents_end..]
    );
    let text = "BT /F1 24 Tf 72 600 Td (Revised: the fee is 100000 baht) Tj ET";
    let content_offset = pdf.len();
    pdf.extend_from_slice(
        format!(
            "{size} 0 obj\n<</Length {}>>\nstream\n{text}\nendstream\nendobj\n",
            text.len()
        )
        .as_bytes(),
    );
    let page_offset = pdf.len();
    pdf.extend_from_slice(format!("{page_id} 0 obj\n{revised_page}\nendobj\n").as_bytes());
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!(
            "xref\n{page_id} 1\n{page_offset:010} 00000 n\r\n{size} 1\n{content_offset:010} 00000 n\r\ntrailer\n<</Size {}/Root 1 0 R/Prev {prev}>>\nstartxref\n{xref}\n%%EOF\n",
            size + 1
        )
        .as_bytes(),
    );
    let revised = t.dir.path().join("revised-2.pdf");
    std::fs::write(&revised, &pdf).unwrap();
    let signed = sign(
        &t,
        &revised,
        "revised-signed.pdf",
        &options(OffsetDateTime::now_utc()),
        false,
    );
    assert_pyhanko_accepts(&t, &signed, 1);
    let (ok, shown) = run(
        Path::new("pdftotext"),
        &[signed.to_str().unwrap(), "-"],
        t.dir.path(),
    );
    assert!(ok, "{shown}");
    assert!(shown.contains("Revised: the fee is 100000 baht"), "{shown}");
    assert!(!shown.contains("agency form"), "{shown}");
}

#[test]
fn a_compression_bomb_is_refused_without_inflating_it() {
    // An object stream that inflates to 100 MiB from about 100 KB, beside
    // an ordinary page: refused by the parser's limit, not inflated.
    let t = tsa();
    let bomb = t.dir.path().join("bomb.pdf");
    let script = r#"
import sys, zlib
bomb = zlib.compress(b"0" * (100 * 1024 * 1024), 9)
objs = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>",
        b"<</Type/ObjStm/N 1/First 4/Filter/FlateDecode/Length %d>>\nstream\n" % len(bomb) + bomb + b"\nendstream"]
out = b"%PDF-1.7\n"
offsets = []
for i, o in enumerate(objs):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % (i + 1) + o + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(objs) + 1)
for o in offsets:
    out += b"%010d 00000 n\r\n" % o
out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(sys.argv[1], "wb").write(out)
"#;
    let status = Command::new("python3")
        .args(["-c", script, bomb.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&bomb).unwrap();
    assert!(bytes.len() < 1024 * 1024, "{}", bytes.len());
    let err = pades::prepare(bytes, &options(OffsetDateTime::now_utc()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot be read") && err.contains("decompress"),
        "{err}"
    );
}
