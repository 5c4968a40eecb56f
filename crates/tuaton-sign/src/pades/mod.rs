//! PAdES baseline signatures (ETSI EN 319 142-1), B-B and B-T: each
//! signature is an incremental update (ISO 32000-1 §7.5.6) appended to the
//! file, so every byte before it, earlier signatures included, stays as it
//! was.
//!
//! The update adds the signature dictionary (`/SubFilter
//! /ETSI.CAdES.detached`, the signing time in `/M`), a signature field
//! whose widget sits on a page (visible with the signer's name and time, or
//! invisible), the AcroForm entry, and, for a certification signature, the
//! DocMDP transform and the catalog's `/Perms`. It ends with a
//! cross-reference section of the file's own kind: a table after a table,
//! a stream after a stream, with `/Prev` naming the one before.
//!
//! `/Contents` is reserved as a hex string of zeros, and `/ByteRange` as a
//! fixed-width slot; both are filled in place once the CMS signature over
//! the byte range's SHA-256 is made, which is the one piece no PDF crate
//! does (docs/signing.md). The original is hashed once, in the pass that
//! also gives the byte range's digest.

mod embedded;
mod read;
mod thai;
mod write;

pub use embedded::{EmbeddedSignature, signatures};

use std::io::Write as _;

use lopdf::{Dictionary, Object, ObjectId, StringFormat};
use ring::digest::{Context, SHA256};
use time::OffsetDateTime;

use crate::cades::{self, Options};
use crate::{CmsSigner, SignError, TimeStampSource};

/// The bytes reserved for the CMS signature: the signer's chain, a time
/// stamp with its own, and room to spare.
pub const CONTENTS_BYTES: usize = 16 * 1024;
/// The largest PDF signed: cross-reference offsets are written in four
/// bytes.
pub const MAX_PDF_BYTES: usize = 2 * 1024 * 1024 * 1024;

/// `/ByteRange [0 a b c]` with room for three ten-digit numbers.
const BYTE_RANGE_SLOT: usize = "[0 0000000000 0000000000 0000000000]".len();

/// Who may change a certified document (DocMDP `/P`, ISO 32000-1 §12.8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certification {
    /// No change at all, not even another signature.
    NoChanges = 1,
    /// Filling in forms and signing.
    FormFilling = 2,
    /// Also annotations.
    Annotations = 3,
}

/// A visible signature: a box on a page with lines of text.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    /// The page, 0 for the first.
    pub page: u32,
    /// The box, `[x1 y1 x2 y2]` in points from the page's lower left.
    pub rect: [f32; 4],
    /// The text, a line each (the signer's Thai and Latin names, the
    /// time). A line with Thai in it is drawn in Noto Sans Thai (embedded),
    /// which has Thai glyphs only; any other in Helvetica, where a
    /// character outside Latin-1 is drawn as `?`.
    pub lines: Vec<String>,
}

/// How a PDF signature is made.
#[derive(Debug, Clone)]
pub struct PdfOptions {
    /// The signing time, written to `/M` (PAdES has no CMS signing-time).
    pub signing_time: OffsetDateTime,
    /// The signer's name, for `/Name`.
    pub signer_name: String,
    /// Why, for `/Reason`.
    pub reason: Option<String>,
    /// Where, for `/Location`.
    pub location: Option<String>,
    /// A visible signature; invisible without one.
    pub appearance: Option<Appearance>,
    /// A certification signature (only the first signature may be one).
    pub certify: Option<Certification>,
}

/// What a PDF is, for showing it to the person who signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfFacts {
    /// Its pages.
    pub pages: u32,
    /// How many signatures it carries already.
    pub signatures: usize,
}

/// Reads what a signer is shown of `pdf`, and refuses what cannot be
/// signed (not a PDF, encrypted, damaged, certified against changes).
pub fn inspect(pdf: &[u8]) -> Result<PdfFacts, SignError> {
    let revision = read::read(pdf, 0)?;
    if revision.certified == Some(Certification::NoChanges as i64) {
        return Err(certified_against_changes());
    }
    Ok(PdfFacts {
        pages: revision.pages,
        signatures: revision.signatures,
    })
}

fn certified_against_changes() -> SignError {
    SignError::Document("the PDF is certified against any change, another signature too".into())
}

/// A PDF with its signature's update appended and `/Contents` still empty.
/// The same file and options always give the same bytes and digest.
pub struct PreparedPdf {
    original: Vec<u8>,
    tail: Vec<u8>,
    /// Where, in `tail`, the hex digits of `/Contents` are.
    contents: std::ops::Range<usize>,
    digest: [u8; 32],
    original_sha256: [u8; 32],
    pages: u32,
    field: String,
}

impl std::fmt::Debug for PreparedPdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPdf")
            .field("bytes", &(self.original.len() + self.tail.len()))
            .field("pages", &self.pages)
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

impl PreparedPdf {
    /// The SHA-256 over the `/ByteRange`: the CMS message-digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The SHA-256 of the file as it was given.
    pub fn original_sha256(&self) -> &[u8; 32] {
        &self.original_sha256
    }

    /// The file's pages.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// The new signature field's name.
    pub fn field_name(&self) -> &str {
        &self.field
    }

    /// Puts the CMS signature (DER) into `/Contents`.
    pub fn embed(mut self, cms: &[u8]) -> Result<SignedPdf, SignError> {
        let slot = &mut self.tail[self.contents.clone()];
        let hex = hex::encode_upper(cms);
        if hex.len() > slot.len() {
            return Err(SignError::Setting(format!(
                "the signature takes {} bytes, more than the {CONTENTS_BYTES} reserved",
                cms.len()
            )));
        }
        slot[..hex.len()].copy_from_slice(hex.as_bytes());
        Ok(SignedPdf {
            original: self.original,
            tail: self.tail,
        })
    }
}

/// A signed PDF: the file as it was, then the signature's update.
pub struct SignedPdf {
    original: Vec<u8>,
    tail: Vec<u8>,
}

impl std::fmt::Debug for SignedPdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedPdf")
            .field("bytes", &self.len())
            .finish_non_exhaustive()
    }
}

impl SignedPdf {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.original.len() + self.tail.len()
    }

    /// Whether it is empty (never: a PDF has a header).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes it out without joining the parts.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        out.write_all(&self.original)?;
        out.write_all(&self.tail)
    }

    /// The file as one buffer.
    pub fn into_vec(self) -> Vec<u8> {
        let mut all = self.original;
        all.extend_from_slice(&self.tail);
        all
    }
}

/// Signs `pdf` with a PAdES B-B signature, or B-T with `time_stamp`.
pub fn sign(
    signer: &CmsSigner,
    pdf: Vec<u8>,
    options: &PdfOptions,
    time_stamp: Option<&dyn TimeStampSource>,
) -> Result<SignedPdf, SignError> {
    let prepared = prepare(pdf, options)?;
    let cms = cades::sign_detached(
        signer,
        prepared.digest(),
        Options {
            signing_time: None,
            time_stamp,
        },
    )?;
    prepared.embed(&cms)
}

/// An object the update writes: its number, generation and offset.
struct Entry {
    id: u32,
    gen_nr: u16,
    offset: usize,
}

/// The update being written: bytes after the original, and where each
/// object begins.
struct Update {
    base: usize,
    out: Vec<u8>,
    entries: Vec<Entry>,
}

impl Update {
    fn begin(&mut self, at: ObjectId) -> Result<(), SignError> {
        // One object is written once: a file whose catalog, page or form
        // arrays are one object would otherwise be redefined twice.
        if self.entries.iter().any(|e| e.id == at.0) {
            return Err(SignError::Document(
                "the PDF's structure is unusual (one object serves as two); save it again with a PDF tool first".into(),
            ));
        }
        self.entries.push(Entry {
            id: at.0,
            gen_nr: at.1,
            offset: self.base + self.out.len(),
        });
        self.out
            .extend_from_slice(format!("{} {} obj\n", at.0, at.1).as_bytes());
        Ok(())
    }

    fn end(&mut self) {
        self.out.extend_from_slice(b"\nendobj\n");
    }

    fn object(&mut self, at: ObjectId, value: &Object) -> Result<(), SignError> {
        self.begin(at)?;
        write::object(&mut self.out, value)?;
        self.end();
        Ok(())
    }

    fn position(&self) -> usize {
        self.base + self.out.len()
    }
}

fn name(name: &str) -> Object {
    Object::Name(name.as_bytes().to_vec())
}

fn string(bytes: &[u8]) -> Object {
    Object::String(bytes.to_vec(), StringFormat::Hexadecimal)
}

fn integer(n: usize) -> Object {
    Object::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Appends the signature's update to `pdf`, its `/Contents` empty.
pub fn prepare(pdf: Vec<u8>, options: &PdfOptions) -> Result<PreparedPdf, SignError> {
    if pdf.len() > MAX_PDF_BYTES {
        return Err(SignError::Document(format!(
            "a PDF of more than {} MiB is not signed",
            MAX_PDF_BYTES >> 20
        )));
    }
    let page_index = options.appearance.as_ref().map_or(0, |a| a.page);
    let rev = read::read(&pdf, page_index)?;
    if rev.certified == Some(Certification::NoChanges as i64) {
        return Err(certified_against_changes());
    }
    if options.certify.is_some() && (rev.signatures > 0 || rev.certified.is_some()) {
        return Err(SignError::Document(
            "only the first signature of a PDF can certify it".into(),
        ));
    }

    // New objects take the numbers from the trailer's /Size on.
    let mut next = rev.next_id;
    let mut take = || {
        let r = (next, 0);
        next += 1;
        r
    };
    let sig_ref = take();
    let field_ref = take();
    let appearance_ref = options.appearance.as_ref().map(|_| take());
    let thai_font = options
        .appearance
        .as_ref()
        .filter(|a| a.lines.iter().any(|l| thai::is_thai(l)))
        .map(|_| [take().0, take().0, take().0, take().0, take().0]);
    let new_form_ref = rev.form.is_none().then(&mut take);
    let xref_ref = rev.xref_stream.then(&mut take);
    let size = next;

    let mut u = Update {
        base: pdf.len(),
        out: Vec::with_capacity(2 * CONTENTS_BYTES + 4096),
        entries: Vec::new(),
    };
    if !matches!(pdf.last(), Some(b'\n' | b'\r')) {
        u.out.push(b'\n');
    }

    // The signature dictionary, its two slots reserved.
    u.begin(sig_ref)?;
    u.out.extend_from_slice(
        b"<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/ETSI.CAdES.detached/ByteRange",
    );
    let byte_range_at = u.out.len();
    u.out.extend(std::iter::repeat_n(b' ', BYTE_RANGE_SLOT));
    u.out.extend_from_slice(b"/Contents<");
    let contents_start = u.out.len();
    u.out.extend(std::iter::repeat_n(b'0', 2 * CONTENTS_BYTES));
    let contents_end = u.out.len();
    u.out.extend_from_slice(b">/M");
    write::hex_string(&mut u.out, write::date(options.signing_time).as_bytes());
    u.out.extend_from_slice(b"/Name");
    write::text_string(&mut u.out, &options.signer_name);
    if let Some(reason) = &options.reason {
        u.out.extend_from_slice(b"/Reason");
        write::text_string(&mut u.out, reason);
    }
    if let Some(location) = &options.location {
        u.out.extend_from_slice(b"/Location");
        write::text_string(&mut u.out, location);
    }
    if let Some(level) = options.certify {
        // ISO 32000-1 §12.8.2.2: the DocMDP transform, version 1.2.
        u.out.extend_from_slice(
            format!(
                "/Reference[<</Type/SigRef/TransformMethod/DocMDP/TransformParams<</Type/TransformParams/P {}/V/1.2>>>>]",
                level as i32
            )
            .as_bytes(),
        );
    }
    u.out.extend_from_slice(b">>");
    u.end();

    // The field and its widget, one dictionary.
    let field_name = unused_field_name(&rev.field_names);
    let mut field = Dictionary::new();
    field.set("Type", name("Annot"));
    field.set("Subtype", name("Widget"));
    field.set("FT", name("Sig"));
    field.set("T", string(field_name.as_bytes()));
    field.set("V", Object::Reference(sig_ref));
    // Print and Locked (ISO 32000-1 §12.5.3).
    field.set("F", Object::Integer(132));
    let page_ref = rev
        .page
        .at
        .ok_or_else(|| SignError::Document("a page is not an indirect object".into()))?;
    field.set("P", Object::Reference(page_ref));
    let rect = options.appearance.as_ref().map_or([0.0; 4], |a| a.rect);
    field.set(
        "Rect",
        Object::Array(rect.iter().map(|v| Object::Real(*v)).collect()),
    );
    if let Some(at) = appearance_ref {
        let mut ap = Dictionary::new();
        ap.set("N", Object::Reference(at));
        field.set("AP", Object::Dictionary(ap));
    }
    u.object(field_ref, &Object::Dictionary(field))?;

    if let (Some(at), Some(look)) = (appearance_ref, &options.appearance) {
        appearance_stream(&mut u, at, look, thai_font)?;
    }

    // The form lists the new field; /SigFlags 3: signatures exist, and
    // the file is to be appended to only.
    let mut catalog = rev.catalog.value.clone();
    let mut catalog_changed = false;
    let (mut form_dict, form_at, mut fields) = match rev.form {
        Some(form) => (form.dict.value, form.dict.at, form.fields),
        None => (
            Dictionary::new(),
            new_form_ref,
            read::Held {
                at: None,
                value: Vec::new(),
            },
        ),
    };
    fields.value.push(Object::Reference(field_ref));
    match fields.at {
        Some(at) => u.object(at, &Object::Array(fields.value))?,
        None => {
            form_dict.set("Fields", Object::Array(fields.value));
        }
    }
    form_dict.set("SigFlags", Object::Integer(3));
    match form_at {
        Some(at) => {
            u.object(at, &Object::Dictionary(form_dict))?;
            if new_form_ref.is_some() {
                catalog.set("AcroForm", Object::Reference(at));
                catalog_changed = true;
            }
        }
        None => {
            catalog.set("AcroForm", Object::Dictionary(form_dict));
            catalog_changed = true;
        }
    }

    // The page lists the widget among its annotations, in an array of its
    // own (an indirect array could be another page's too).
    let mut annots = rev.annots.map(|a| a.value).unwrap_or_default();
    annots.push(Object::Reference(field_ref));
    let mut page = rev.page.value.clone();
    page.set("Annots", Object::Array(annots));
    u.object(page_ref, &Object::Dictionary(page))?;

    if options.certify.is_some() {
        let mut perms = Dictionary::new();
        perms.set("DocMDP", Object::Reference(sig_ref));
        catalog.set("Perms", Object::Dictionary(perms));
        catalog_changed = true;
    }
    if catalog_changed {
        let at = rev
            .catalog
            .at
            .ok_or_else(|| SignError::Document("the catalog is not an indirect object".into()))?;
        u.object(at, &Object::Dictionary(catalog))?;
    }

    // The trailer: every entry of the one before (ISO 32000-1 §7.5.6) but
    // those that describe a section, /Prev to the section before, and the
    // file identifier's second half renewed (§14.4).
    let mut trailer = Dictionary::new();
    for (key, value) in rev.trailer.iter() {
        let describes_section = matches!(
            key.as_slice(),
            b"Prev"
                | b"Size"
                | b"XRefStm"
                | b"Type"
                | b"W"
                | b"Index"
                | b"Length"
                | b"Filter"
                | b"DecodeParms"
        );
        if !describes_section {
            trailer.set(key.clone(), value.clone());
        }
    }
    trailer.set("Size", Object::Integer(i64::from(size)));
    trailer.set("Prev", integer(rev.startxref));
    let first_id = match rev.trailer.get(b"ID") {
        Ok(Object::Array(ids)) => match ids.first() {
            Some(Object::String(s, _)) => s.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let renewed = file_id(&first_id, &pdf, options);
    let first_id = if first_id.is_empty() {
        renewed.to_vec()
    } else {
        first_id
    };
    trailer.set(
        "ID",
        Object::Array(vec![string(&first_id), string(&renewed)]),
    );

    let xref_at = u.position();
    match xref_ref {
        Some(at) => xref_stream(&mut u, at, trailer)?,
        None => xref_table(&mut u, &trailer)?,
    }
    u.out
        .extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());

    // Now the length is known: fill /ByteRange, then hash around /Contents.
    let total = u.position();
    let gap_start = u.base + contents_start - 1;
    let gap_end = u.base + contents_end + 1;
    let range = format!("[0 {gap_start} {gap_end} {}", total - gap_end);
    if range.len() + 1 > BYTE_RANGE_SLOT {
        return Err(SignError::Document("the PDF is too large to sign".into()));
    }
    let slot = &mut u.out[byte_range_at..byte_range_at + BYTE_RANGE_SLOT];
    slot[..range.len()].copy_from_slice(range.as_bytes());
    slot[BYTE_RANGE_SLOT - 1] = b']';

    let mut hash = Context::new(&SHA256);
    hash.update(&pdf);
    let original_sha256 = finish(hash.clone());
    hash.update(&u.out[..contents_start - 1]);
    hash.update(&u.out[contents_end + 1..]);
    let digest = finish(hash);

    Ok(PreparedPdf {
        original: pdf,
        tail: u.out,
        contents: contents_start..contents_end,
        digest,
        original_sha256,
        pages: rev.pages,
        field: field_name,
    })
}

fn finish(hash: Context) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(hash.finish().as_ref());
    out
}

/// `Signature1`, `Signature2`, …: the first name no field has.
fn unused_field_name(taken: &[String]) -> String {
    (1..)
        .map(|n| format!("Signature{n}"))
        .find(|name| !taken.iter().any(|t| t == name))
        .unwrap_or_else(|| "Signature".into())
}

/// The file identifier's second half: from the first, the file's end and
/// the signing, so preparing the same file twice gives the same bytes.
fn file_id(first: &[u8], pdf: &[u8], options: &PdfOptions) -> [u8; 16] {
    let mut hash = Context::new(&SHA256);
    hash.update(b"tuaton pdf revision");
    hash.update(first);
    hash.update(&(pdf.len() as u64).to_be_bytes());
    hash.update(&pdf[pdf.len().saturating_sub(1024)..]);
    hash.update(&options.signing_time.unix_timestamp().to_be_bytes());
    hash.update(options.signer_name.as_bytes());
    let mut id = [0; 16];
    id.copy_from_slice(&hash.finish().as_ref()[..16]);
    id
}

/// The visible signature's form XObject: a pale box with a border and the
/// lines of text, sized to fit. A line with Thai in it is shaped and drawn
/// in the embedded Thai font (whose objects `thai` numbers), any other in
/// Helvetica.
fn appearance_stream(
    u: &mut Update,
    at: ObjectId,
    look: &Appearance,
    thai: Option<[u32; 5]>,
) -> Result<(), SignError> {
    let [x1, y1, x2, y2] = look.rect;
    let (w, h) = ((x2 - x1).abs(), (y2 - y1).abs());
    if !(w.is_finite() && h.is_finite()) || w < 1.0 || h < 1.0 {
        return Err(SignError::Document(
            "a visible signature needs a box of at least one point each way".into(),
        ));
    }
    enum Line {
        Latin(Vec<u8>),
        Thai(thai::Shaped),
    }
    let lines = look
        .lines
        .iter()
        .map(|l| match thai {
            Some(_) if thai::is_thai(l) => thai::shape(l).map(Line::Thai),
            _ => Ok(Line::Latin(latin1(l))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Widths in em: Thai as shaped, Helvetica's characters about half an em.
    let widest = lines
        .iter()
        .map(|l| match l {
            Line::Latin(bytes) => bytes.len() as f32 * 0.55,
            Line::Thai(shaped) => shaped.width,
        })
        .fold(1.0f32, f32::max);
    let count = lines.len().max(1) as f32;
    let size = (10.0f32)
        .min((h - 6.0) / (count * 1.3))
        .min((w - 8.0) / widest)
        .max(2.0);
    let mut content = Vec::new();
    let _ = writeln!(
        content,
        "q 0.96 0.97 1 rg 0 0 {w:.2} {h:.2} re f 0.15 0.3 0.6 RG 1 w 0.5 0.5 {:.2} {:.2} re S Q",
        w - 1.0,
        h - 1.0
    );
    let mut used = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let baseline = h - 3.0 - size * (1.0 + 1.3 * i as f32);
        match line {
            Line::Latin(bytes) => {
                let _ = write!(
                    content,
                    "BT 0 0 0 rg /F1 {size:.2} Tf 1 0 0 1 4 {baseline:.2} Tm "
                );
                write::hex_string(&mut content, bytes);
                content.extend_from_slice(b" Tj ET\n");
            }
            Line::Thai(shaped) => {
                let _ = write!(content, "BT 0 0 0 rg /F2 {size:.2} Tf");
                for g in &shaped.glyphs {
                    let _ = write!(
                        content,
                        " 1 0 0 1 {:.2} {:.2} Tm <{:04X}> Tj",
                        4.0 + g.x * size,
                        baseline + g.y * size,
                        g.glyph
                    );
                }
                content.extend_from_slice(b" ET\n");
                used.extend(shaped.text_of.iter().cloned());
                used.extend(shaped.glyphs.iter().map(|g| (g.glyph, String::new())));
            }
        }
    }

    let thai_font = match thai {
        Some(ids) if !used.is_empty() => Some(ids),
        _ => None,
    };
    u.begin(at)?;
    let _ = write!(
        u.out,
        "<</Type/XObject/Subtype/Form/BBox[0 0 {w:.2} {h:.2}]/Resources<</Font<</F1<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>{}>>>>/Length {}>>\nstream\n",
        thai_font
            .map(|ids| format!("/F2 {} 0 R", ids[0]))
            .unwrap_or_default(),
        content.len()
    );
    u.out.extend_from_slice(&content);
    u.out.extend_from_slice(b"\nendstream");
    u.end();
    if let Some(ids) = thai {
        // Numbered already, so written even when no line needed them.
        for (id, object) in ids.into_iter().zip(thai::objects(ids, &used)?) {
            u.begin((id, 0))?;
            u.out.extend_from_slice(&object);
            u.end();
        }
    }
    Ok(())
}

/// `text` in WinAnsiEncoding as far as Latin-1 goes, `?` beyond it.
fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match u32::from(c) {
            0x20..=0x7e | 0xa0..=0xff => c as u8,
            _ => b'?',
        })
        .collect()
}

/// Groups the update's objects into `(first, count)` runs of numbers.
fn runs(entries: &mut [Entry]) -> Vec<(u32, Vec<&Entry>)> {
    entries.sort_by_key(|e| e.id);
    let mut runs: Vec<(u32, Vec<&Entry>)> = Vec::new();
    for e in entries.iter() {
        match runs.last_mut() {
            Some((first, group)) if u64::from(*first) + group.len() as u64 == u64::from(e.id) => {
                group.push(e)
            }
            _ => runs.push((e.id, vec![e])),
        }
    }
    runs
}

/// A cross-reference table (ISO 32000-1 §7.5.4) and its trailer.
fn xref_table(u: &mut Update, trailer: &Dictionary) -> Result<(), SignError> {
    let mut entries = std::mem::take(&mut u.entries);
    let mut section = b"xref\n".to_vec();
    for (first, group) in runs(&mut entries) {
        let _ = writeln!(section, "{first} {}", group.len());
        for e in group {
            let _ = write!(section, "{:010} {:05} n\r\n", e.offset, e.gen_nr);
        }
    }
    section.extend_from_slice(b"trailer\n");
    write::dictionary(&mut section, trailer)?;
    section.push(b'\n');
    u.out.extend_from_slice(&section);
    Ok(())
}

/// A cross-reference stream (ISO 32000-1 §7.5.8), listing itself too,
/// uncompressed: `/W [1 4 2]`.
fn xref_stream(u: &mut Update, at: ObjectId, mut trailer: Dictionary) -> Result<(), SignError> {
    u.begin(at)?;
    let mut entries = std::mem::take(&mut u.entries);
    let mut index = Vec::new();
    let mut data = Vec::new();
    for (first, group) in runs(&mut entries) {
        index.push(Object::Integer(i64::from(first)));
        index.push(integer(group.len()));
        for e in group {
            let offset = u32::try_from(e.offset)
                .map_err(|_| SignError::Document("the PDF is too large to sign".into()))?;
            data.push(1);
            data.extend_from_slice(&offset.to_be_bytes());
            data.extend_from_slice(&e.gen_nr.to_be_bytes());
        }
    }
    trailer.set("Type", name("XRef"));
    trailer.set(
        "W",
        Object::Array(vec![
            Object::Integer(1),
            Object::Integer(4),
            Object::Integer(2),
        ]),
    );
    trailer.set("Index", Object::Array(index));
    trailer.set("Length", integer(data.len()));
    write::dictionary(&mut u.out, &trailer)?;
    u.out.extend_from_slice(b"\nstream\n");
    u.out.extend_from_slice(&data);
    u.out.extend_from_slice(b"\nendstream");
    u.end();
    Ok(())
}
