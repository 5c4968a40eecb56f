//! PAdES B-T signing time and memory for 100 KB, 10 MB and 100 MB PDFs,
//! beside `sha256sum` (and `openssl dgst -sha256`) of the same files in
//! the same run.
//!
//! Each signing runs in a child process of its own (this binary again),
//! so its peak resident memory (`VmHWM`) is its own: the child reads the
//! file, notes its resident memory, signs (software P-256 key, Tuaton's TSA
//! in process, one signature and one time stamp), and reports the signing
//! time and the peak. The PDFs are written here, as a scanned document is:
//! each page an image of about 1 MB, with a cross-reference table; and,
//! the worst case for memory, one page whose one image is the whole file.
//!
//! Run: `cargo bench -p tuaton-sign --bench pades`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ::time::OffsetDateTime;
use tuaton_sign::pades::{self, PdfOptions};

#[path = "../tests/common/mod.rs"]
mod common;

const RUNS: usize = 5;
const CHILD: &str = "TUATON_PADES_BENCH_FILE";

/// A PDF of about `size` bytes in `pages` pages, as a scanned document
/// is: each page an uncompressed image of pseudo-random bytes.
fn write_pdf(path: &Path, size: usize, pages: usize) {
    let side = ((size / pages / 3) as f64).sqrt().ceil() as usize;
    let image_len = side * side * 3;
    let content = b"q 400 0 0 400 100 300 cm /Im1 Do Q";
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 3 + 3 * i)).collect();
    let mut objects: Vec<Vec<u8>> = vec![
        b"<</Type/Catalog/Pages 2 0 R>>".to_vec(),
        format!("<</Type/Pages/Kids[{}]/Count {pages}>>", kids.join(" ")).into_bytes(),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..pages {
        objects.push(
            format!(
                "<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents {} 0 R/Resources<</XObject<</Im1 {} 0 R>>>>>>",
                4 + 3 * i,
                5 + 3 * i
            )
            .into_bytes(),
        );
        objects.push(
            [
                format!("<</Length {}>>\nstream\n", content.len()).as_bytes(),
                content,
                b"\nendstream",
            ]
            .concat(),
        );
        let mut image = format!(
            "<</Type/XObject/Subtype/Image/Width {side}/Height {side}/ColorSpace/DeviceRGB/BitsPerComponent 8/Length {image_len}>>\nstream\n"
        )
        .into_bytes();
        image.extend((0..image_len).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
        image.extend_from_slice(b"\nendstream");
        objects.push(image);
    }
    let pdf = common::classic_pdf(&objects);
    std::fs::File::create(path)
        .unwrap()
        .write_all(&pdf)
        .unwrap();
}

/// The process's resident and peak resident memory, in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The child: sign `path` once (the signed file stays in memory, its
/// update beside the original) and print `ms rss_after_read_kib peak_kib`.
fn child(path: &str) {
    let t = common::tsa();
    let options = PdfOptions {
        signing_time: OffsetDateTime::now_utc(),
        signer_name: "Somchai Jaidee".into(),
        reason: None,
        location: None,
        appearance: None,
        certify: None,
    };
    let pdf = std::fs::read(path).unwrap();
    let (after_read, _) = memory();
    let start = Instant::now();
    let signed = pades::sign(&t.signer, pdf, &options, Some(&t.stamper)).unwrap();
    let elapsed = start.elapsed();
    let (_, peak) = memory();
    assert!(!signed.is_empty());
    println!("{} {after_read} {peak}", elapsed.as_secs_f64() * 1000.0);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if let Ok(path) = std::env::var(CHILD) {
        child(&path);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    println!(
        "| file | sha256sum (median of {RUNS}) | openssl dgst -sha256 | PAdES B-T sign (median) | sign / sha256sum | resident after reading | peak while signing |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, size, pages) in [
        ("100 KB, 1 page", 100_000, 1),
        ("10 MB, 10 pages", 10_000_000, 10),
        ("100 MB, 100 pages", 100_000_000, 100),
        ("100 MB, 1 page", 100_000_000, 1),
    ] {
        let path = dir.path().join(format!("{size}-{pages}.pdf"));
        write_pdf(&path, size, pages);
        let timed = |program: &str, args: &[&str]| {
            median(
                (0..RUNS)
                    .map(|_| {
                        let start = Instant::now();
                        let ok = Command::new(program)
                            .args(args)
                            .arg(&path)
                            .output()
                            .unwrap();
                        assert!(ok.status.success());
                        start.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect(),
            )
        };
        let hash = timed("sha256sum", &[]);
        let openssl = timed("openssl", &["dgst", "-sha256"]);
        let runs: Vec<(f64, u64, u64)> = (0..RUNS)
            .map(|_| {
                let out = Command::new(&me).env(CHILD, &path).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8(out.stdout).unwrap();
                let mut parts = text.split_whitespace();
                (
                    parts.next().unwrap().parse().unwrap(),
                    parts.next().unwrap().parse().unwrap(),
                    parts.next().unwrap().parse().unwrap(),
                )
            })
            .collect();
        let sign = median(runs.iter().map(|r| r.0).collect());
        let after_read = runs.iter().map(|r| r.1).max().unwrap();
        let peak = runs.iter().map(|r| r.2).max().unwrap();
        println!(
            "| {label} | {hash:.1} ms | {openssl:.1} ms | {sign:.1} ms | {:.2} | {:.1} MiB | {:.1} MiB |",
            sign / hash,
            after_read as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
}
