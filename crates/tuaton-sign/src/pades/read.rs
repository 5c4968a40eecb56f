//! Reading what a signature needs from a PDF: the last cross-reference
//! section (its offset and whether it is a stream), the trailer, the
//! catalog, the page the signature's widget goes on, the AcroForm with its
//! fields, and a certification's permissions.
//!
//! lopdf parses, with its limits for untrusted files (nesting depth,
//! decompressed stream size, cross-reference entries bounded by the bytes
//! that hold them) and the newest revision of each object winning. Streams
//! other than object streams are dropped as they are read: a signature
//! rewrites dictionaries and arrays only, so a large file is held once, as
//! the caller's buffer. A file whose cross-reference data had to be
//! repaired is refused: an update on top of a repaired view could show
//! viewers another document than the one read here.

use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};

use crate::SignError;

/// The deepest page tree walked, the most page tree nodes visited, and the
/// most fields read.
const MAX_TREE_DEPTH: usize = 32;
const MAX_TREE_NODES: usize = 200_000;
const MAX_FIELDS: usize = 10_000;
/// The most one stream (an object or cross-reference stream) may inflate to.
const MAX_INFLATED: usize = 64 * 1024 * 1024;

/// A value read from the file: an indirect object (`at`) or a value held
/// inline in the object above it.
#[derive(Debug, Clone)]
pub(super) struct Held<T> {
    pub at: Option<ObjectId>,
    pub value: T,
}

/// The AcroForm with its `/Fields` array.
#[derive(Debug)]
pub(super) struct Form {
    pub dict: Held<Dictionary>,
    pub fields: Held<Vec<Object>>,
}

/// What the last revision of a PDF says, as far as a new signature needs.
#[derive(Debug)]
pub(super) struct Revision {
    /// The last `startxref`.
    pub startxref: usize,
    /// Whether that section is a cross-reference stream (PDF 1.5).
    pub xref_stream: bool,
    /// The first object number no object has.
    pub next_id: u32,
    /// The trailer (or the cross-reference stream's dictionary).
    pub trailer: Dictionary,
    /// The catalog, always an indirect object.
    pub catalog: Held<Dictionary>,
    /// The number of pages.
    pub pages: u32,
    /// The page the widget goes on, always an indirect object.
    pub page: Held<Dictionary>,
    /// That page's `/Annots`, if it has any.
    pub annots: Option<Held<Vec<Object>>>,
    /// The AcroForm, if there is one.
    pub form: Option<Form>,
    /// The names (`/T`) of the form's top-level fields, as text.
    pub field_names: Vec<String>,
    /// How many signature fields are signed.
    pub signatures: usize,
    /// The `/ByteRange` of each signed field whose signature dictionary
    /// could be read, in the form's order.
    pub byte_ranges: Vec<Vec<i64>>,
    /// A certification signature's DocMDP `/P`, if the document has one
    /// (1, no changes, when its permissions cannot be read).
    pub certified: Option<i64>,
}

fn unreadable(what: impl std::fmt::Display) -> SignError {
    SignError::Document(format!("the PDF cannot be read: {what}"))
}

/// Keeps what a signature may rewrite, and object streams until their
/// objects are read; drops every other stream's bytes.
fn structure_only(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    match object {
        Object::Stream(s) if !s.dict.has_type(b"ObjStm") => None,
        _ => Some((id, object.clone())),
    }
}

/// Reads `bytes` for a signature whose widget goes on page `page_index`
/// (0-based). The parser is another crate's; a panic inside it is answered
/// as an unreadable file.
pub(super) fn read(bytes: &[u8], page_index: u32) -> Result<Revision, SignError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(SignError::Document(
            "the file does not begin with a PDF header".into(),
        ));
    }
    std::panic::catch_unwind(|| read_revision(bytes, page_index))
        .unwrap_or_else(|_| Err(unreadable("its structure is damaged")))
}

fn read_revision(bytes: &[u8], page_index: u32) -> Result<Revision, SignError> {
    let options = LoadOptions {
        filter: Some(structure_only),
        max_decompressed_size: Some(MAX_INFLATED),
        ..LoadOptions::default()
    };
    let doc = Document::load_mem_with_options(bytes, options).map_err(unreadable)?;
    if doc.trailer.has(b"Encrypt") {
        return Err(SignError::Document(
            "an encrypted PDF is not signed; remove its password first".into(),
        ));
    }
    if doc.xref_recovery.is_some() {
        return Err(SignError::Document(
            "the PDF's cross-reference data is damaged; save it again with a PDF tool first".into(),
        ));
    }
    let startxref = doc.xref_start;
    let xref_stream = !bytes
        .get(startxref..)
        .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"xref"));
    let size = doc
        .trailer
        .get(b"Size")
        .and_then(Object::as_i64)
        .ok()
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| unreadable("the trailer has no /Size"))?;
    let next_id = size.max(doc.max_id.saturating_add(1));

    let catalog = dictionary(&doc, doc.trailer.get(b"Root").ok(), "the catalog")?;
    if catalog.at.is_none() {
        return Err(unreadable("the catalog is not an indirect object"));
    }
    let tree = dictionary(&doc, catalog.value.get(b"Pages").ok(), "the page tree")?;
    let pages = tree
        .value
        .get(b"Count")
        .and_then(Object::as_i64)
        .ok()
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| unreadable("the page tree has no /Count"))?;
    if page_index >= pages {
        return Err(SignError::Document(format!(
            "the signature is placed on page {}, but the PDF has {pages}",
            u64::from(page_index) + 1
        )));
    }
    let page = find_page(&doc, tree, page_index)?;
    let annots = page
        .value
        .get(b"Annots")
        .ok()
        .filter(|a| !matches!(a, Object::Null))
        .map(|a| array(&doc, a, "a page's annotations"))
        .transpose()?;

    let form = match catalog.value.get(b"AcroForm") {
        Err(_) | Ok(Object::Null) => None,
        Ok(f) => {
            let dict = dictionary(&doc, Some(f), "the AcroForm")?;
            let fields = match dict.value.get(b"Fields") {
                Err(_) | Ok(Object::Null) => Held {
                    at: None,
                    value: Vec::new(),
                },
                Ok(a) => array(&doc, a, "the form's fields")?,
            };
            Some(Form { dict, fields })
        }
    };
    let mut field_names = Vec::new();
    let mut signatures = 0;
    let mut byte_ranges = Vec::new();
    if let Some(form) = &form {
        if form.fields.value.len() > MAX_FIELDS {
            return Err(SignError::Document(format!(
                "a PDF with more than {MAX_FIELDS} form fields is not signed"
            )));
        }
        for field in &form.fields.value {
            let Ok(field) = dictionary(&doc, Some(field), "a form field") else {
                continue;
            };
            if let Ok(Object::String(t, _)) = field.value.get(b"T") {
                field_names.push(text(t));
            }
            let is_signature = matches!(field.value.get(b"FT"), Ok(Object::Name(n)) if n == b"Sig");
            if is_signature && field.value.has(b"V") {
                signatures += 1;
                let range = dictionary(&doc, field.value.get(b"V").ok(), "a signature")
                    .ok()
                    .and_then(|v| {
                        let a = array(&doc, v.value.get(b"ByteRange").ok()?, "a byte range");
                        a.ok()
                    })
                    .and_then(|a| a.value.iter().map(|n| n.as_i64().ok()).collect());
                byte_ranges.extend(range);
            }
        }
    }
    let certified = certification(&doc, &catalog.value);
    Ok(Revision {
        startxref,
        xref_stream,
        next_id,
        trailer: doc.trailer.clone(),
        catalog,
        pages,
        page,
        annots,
        form,
        field_names,
        signatures,
        byte_ranges,
        certified,
    })
}

/// A PDF text string as text: UTF-16BE after its byte-order mark, and
/// otherwise the bytes as Latin-1 (which PDFDocEncoding is for the names
/// fields have).
fn text(bytes: &[u8]) -> String {
    match bytes.strip_prefix(&[0xfe, 0xff]) {
        Some(utf16) => {
            let units: Vec<u16> = utf16
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        None => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Follows `value` to a dictionary: an indirect one or one held inline.
fn dictionary(
    doc: &Document,
    value: Option<&Object>,
    what: &str,
) -> Result<Held<Dictionary>, SignError> {
    match value {
        Some(Object::Reference(at)) => match doc.objects.get(at) {
            Some(Object::Dictionary(value)) => Ok(Held {
                at: Some(*at),
                value: value.clone(),
            }),
            Some(_) => Err(unreadable(format!("{what} is not a dictionary"))),
            None => Err(unreadable(format!("{what} is missing"))),
        },
        Some(Object::Dictionary(value)) => Ok(Held {
            at: None,
            value: value.clone(),
        }),
        _ => Err(unreadable(format!("{what} is missing"))),
    }
}

/// Follows `value` to an array: an indirect one or one held inline.
fn array(doc: &Document, value: &Object, what: &str) -> Result<Held<Vec<Object>>, SignError> {
    match value {
        Object::Reference(at) => match doc.objects.get(at) {
            Some(Object::Array(value)) => Ok(Held {
                at: Some(*at),
                value: value.clone(),
            }),
            _ => Err(unreadable(format!("{what} is not an array"))),
        },
        Object::Array(value) => Ok(Held {
            at: None,
            value: value.clone(),
        }),
        _ => Err(unreadable(format!("{what} is not an array"))),
    }
}

/// The `index`th page (0-based) under the page tree `node`, by the
/// subtrees' `/Count`s, visiting at most [`MAX_TREE_NODES`] nodes.
fn find_page(
    doc: &Document,
    mut node: Held<Dictionary>,
    mut index: u32,
) -> Result<Held<Dictionary>, SignError> {
    let mut visited = 0usize;
    for _ in 0..MAX_TREE_DEPTH {
        let kids = match node.value.get(b"Kids") {
            Ok(k) => array(doc, k, "a page tree node's kids")?.value,
            Err(_) => return Err(unreadable("a page tree node has no /Kids")),
        };
        let mut next = None;
        for kid in &kids {
            visited += 1;
            if visited > MAX_TREE_NODES {
                return Err(unreadable("the page tree is too large"));
            }
            let Object::Reference(_) = kid else {
                return Err(unreadable("a page is not an indirect object"));
            };
            let kid = dictionary(doc, Some(kid), "a page")?;
            let is_tree = matches!(kid.value.get(b"Type"), Ok(Object::Name(n)) if n == b"Pages")
                || kid.value.has(b"Kids");
            if is_tree {
                let count = kid
                    .value
                    .get(b"Count")
                    .and_then(Object::as_i64)
                    .ok()
                    .and_then(|c| u32::try_from(c).ok())
                    .ok_or_else(|| unreadable("a page tree node has no /Count"))?;
                if index < count {
                    next = Some(kid);
                    break;
                }
                index -= count;
            } else if index == 0 {
                return Ok(kid);
            } else {
                index -= 1;
            }
        }
        node = next.ok_or_else(|| unreadable("the page tree has fewer pages than it counts"))?;
    }
    Err(unreadable("the page tree is too deep"))
}

/// A certification signature's DocMDP permission (`/P`, 2 when left out),
/// read from the catalog's `/Perms`; 1 (no changes) when the catalog names
/// a certification that cannot be read, so a damaged one is never taken
/// for none.
fn certification(doc: &Document, catalog: &Dictionary) -> Option<i64> {
    let perms = dictionary(doc, catalog.get(b"Perms").ok(), "the permissions").ok()?;
    let docmdp = perms.value.get(b"DocMDP").ok()?;
    let Ok(signature) = dictionary(doc, Some(docmdp), "the certification") else {
        return Some(1);
    };
    let references = match signature.value.get(b"Reference") {
        Ok(a) => match array(doc, a, "the signature references") {
            Ok(a) => a.value,
            Err(_) => return Some(1),
        },
        Err(_) => return Some(2),
    };
    for reference in &references {
        let Ok(reference) = dictionary(doc, Some(reference), "a signature reference") else {
            return Some(1);
        };
        let is_docmdp = matches!(reference.value.get(b"TransformMethod"), Ok(Object::Name(n)) if n == b"DocMDP");
        if is_docmdp {
            let p = match reference.value.get(b"TransformParams") {
                Ok(params) => match dictionary(doc, Some(params), "the transform") {
                    Ok(t) => t.value.get(b"P").and_then(Object::as_i64).unwrap_or(2),
                    Err(_) => 1,
                },
                Err(_) => 2,
            };
            return Some(p);
        }
    }
    Some(2)
}
