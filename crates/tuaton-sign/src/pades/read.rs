//! Reading what a signature needs from a PDF, and nothing more: the last
//! cross-reference section (its offset and whether it is a stream), the
//! trailer, the catalog, the page the signature's widget goes on, the
//! AcroForm with its fields, and a certification's permissions. The `pdf`
//! crate parses; it reads objects only when asked, so a large file costs
//! little beyond its hash.

use pdf::backend::Backend;
use pdf::file::{NoCache, NoLog, Storage};
use pdf::object::{ParseOptions, PlainRef, Resolve};
use pdf::primitive::{Dictionary, Primitive};

use crate::SignError;

/// The deepest page tree walked, and the most fields read.
const MAX_TREE_DEPTH: usize = 32;
const MAX_FIELDS: usize = 10_000;

/// A value read from the file: an indirect object (`at`) or a value held
/// inline in the object above it.
#[derive(Debug, Clone)]
pub(super) struct Held<T> {
    pub at: Option<PlainRef>,
    pub value: T,
}

/// The AcroForm with its `/Fields` array.
#[derive(Debug)]
pub(super) struct Form {
    pub dict: Held<Dictionary>,
    pub fields: Held<Vec<Primitive>>,
}

/// What the last revision of a PDF says, as far as a new signature needs.
#[derive(Debug)]
pub(super) struct Revision {
    /// The last `startxref`.
    pub startxref: usize,
    /// Whether that section is a cross-reference stream (PDF 1.5).
    pub xref_stream: bool,
    /// The trailer's `/Size`: the next object number free.
    pub size: u64,
    /// The trailer (or the cross-reference stream's dictionary).
    pub trailer: Dictionary,
    /// The catalog, always an indirect object.
    pub catalog: Held<Dictionary>,
    /// The number of pages.
    pub pages: u32,
    /// The page the widget goes on, always an indirect object.
    pub page: Held<Dictionary>,
    /// That page's `/Annots`, if it has any.
    pub annots: Option<Held<Vec<Primitive>>>,
    /// The AcroForm, if there is one.
    pub form: Option<Form>,
    /// The names (`/T`) of the form's top-level fields.
    pub field_names: Vec<Vec<u8>>,
    /// How many signature fields are signed.
    pub signatures: usize,
    /// A certification signature's DocMDP `/P`, if the document has one.
    pub certified: Option<i32>,
}

fn unreadable(what: impl std::fmt::Display) -> SignError {
    SignError::Document(format!("the PDF cannot be read: {what}"))
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
    let mut storage = Storage::with_cache(bytes, ParseOptions::strict(), NoCache, NoCache, NoLog)
        .map_err(unreadable)?;
    let trailer = storage.load_storage_and_trailer().map_err(unreadable)?;
    if trailer.get("Encrypt").is_some() {
        return Err(SignError::Document(
            "an encrypted PDF is not signed; remove its password first".into(),
        ));
    }
    let startxref = bytes.locate_xref_offset().map_err(unreadable)?;
    let xref_stream = !bytes
        .get(startxref..)
        .map(|rest| rest.trim_ascii_start().starts_with(b"xref"))
        .unwrap_or(false);
    let size = trailer
        .get("Size")
        .and_then(|s| s.as_integer().ok())
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| unreadable("the trailer has no /Size"))?;
    let r = storage.resolver();

    let catalog = dictionary(&r, trailer.get("Root"), "the catalog")?;
    if catalog.at.is_none() {
        return Err(unreadable("the catalog is not an indirect object"));
    }
    let tree = dictionary(&r, catalog.value.get("Pages"), "the page tree")?;
    let pages = tree
        .value
        .get("Count")
        .and_then(|c| c.as_u32().ok())
        .ok_or_else(|| unreadable("the page tree has no /Count"))?;
    if page_index >= pages {
        return Err(SignError::Document(format!(
            "the signature is placed on page {}, but the PDF has {pages}",
            u64::from(page_index) + 1
        )));
    }
    let page = find_page(&r, tree, page_index)?;
    let annots = page
        .value
        .get("Annots")
        .map(|a| array(&r, a, "a page's annotations"))
        .transpose()?;

    let form = match catalog.value.get("AcroForm") {
        None | Some(Primitive::Null) => None,
        Some(f) => {
            let dict = dictionary(&r, Some(f), "the AcroForm")?;
            let fields = match dict.value.get("Fields") {
                None | Some(Primitive::Null) => Held {
                    at: None,
                    value: Vec::new(),
                },
                Some(a) => array(&r, a, "the form's fields")?,
            };
            Some(Form { dict, fields })
        }
    };
    let mut field_names = Vec::new();
    let mut signatures = 0;
    if let Some(form) = &form {
        for field in form.fields.value.iter().take(MAX_FIELDS) {
            let Ok(field) = dictionary(&r, Some(field), "a form field") else {
                continue;
            };
            if let Some(Primitive::String(t)) = field.value.get("T") {
                field_names.push(t.as_bytes().to_vec());
            }
            let is_signature =
                matches!(field.value.get("FT"), Some(Primitive::Name(n)) if n.as_str() == "Sig");
            if is_signature && field.value.get("V").is_some() {
                signatures += 1;
            }
        }
    }
    let certified = certification(&r, &catalog.value);
    Ok(Revision {
        startxref,
        xref_stream,
        size,
        trailer,
        catalog,
        pages,
        page,
        annots,
        form,
        field_names,
        signatures,
        certified,
    })
}

/// Follows `value` to a dictionary: an indirect one or one held inline.
fn dictionary(
    r: &impl Resolve,
    value: Option<&Primitive>,
    what: &str,
) -> Result<Held<Dictionary>, SignError> {
    match value {
        Some(Primitive::Reference(at)) => match r.resolve(*at).map_err(unreadable)? {
            Primitive::Dictionary(value) => Ok(Held {
                at: Some(*at),
                value,
            }),
            _ => Err(unreadable(format!("{what} is not a dictionary"))),
        },
        Some(Primitive::Dictionary(value)) => Ok(Held {
            at: None,
            value: value.clone(),
        }),
        _ => Err(unreadable(format!("{what} is missing"))),
    }
}

/// Follows `value` to an array: an indirect one or one held inline.
fn array(
    r: &impl Resolve,
    value: &Primitive,
    what: &str,
) -> Result<Held<Vec<Primitive>>, SignError> {
    match value {
        Primitive::Reference(at) => match r.resolve(*at).map_err(unreadable)? {
            Primitive::Array(value) => Ok(Held {
                at: Some(*at),
                value,
            }),
            _ => Err(unreadable(format!("{what} is not an array"))),
        },
        Primitive::Array(value) => Ok(Held {
            at: None,
            value: value.clone(),
        }),
        _ => Err(unreadable(format!("{what} is not an array"))),
    }
}

/// The `index`th page (0-based) under the page tree `node`, by the
/// subtrees' `/Count`s.
fn find_page(
    r: &impl Resolve,
    mut node: Held<Dictionary>,
    mut index: u32,
) -> Result<Held<Dictionary>, SignError> {
    for _ in 0..MAX_TREE_DEPTH {
        let kids = match node.value.get("Kids") {
            Some(k) => array(r, k, "a page tree node's kids")?.value,
            None => return Err(unreadable("a page tree node has no /Kids")),
        };
        let mut next = None;
        for kid in &kids {
            let Primitive::Reference(_) = kid else {
                return Err(unreadable("a page is not an indirect object"));
            };
            let kid = dictionary(r, Some(kid), "a page")?;
            let is_tree = matches!(kid.value.get("Type"), Some(Primitive::Name(n)) if n.as_str() == "Pages")
                || kid.value.get("Kids").is_some();
            if is_tree {
                let count = kid
                    .value
                    .get("Count")
                    .and_then(|c| c.as_u32().ok())
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
/// read from the catalog's `/Perms`.
fn certification(r: &impl Resolve, catalog: &Dictionary) -> Option<i32> {
    let perms = dictionary(r, catalog.get("Perms"), "the permissions").ok()?;
    let signature = dictionary(r, perms.value.get("DocMDP"), "the certification").ok()?;
    let references = match signature.value.get("Reference") {
        Some(a) => array(r, a, "the signature references").ok()?.value,
        None => return Some(2),
    };
    for reference in &references {
        let Ok(reference) = dictionary(r, Some(reference), "a signature reference") else {
            continue;
        };
        let is_docmdp = matches!(reference.value.get("TransformMethod"), Some(Primitive::Name(n)) if n.as_str() == "DocMDP");
        if is_docmdp {
            let p = dictionary(r, reference.value.get("TransformParams"), "the transform")
                .ok()
                .and_then(|t| t.value.get("P").and_then(|p| p.as_integer().ok()));
            return Some(p.unwrap_or(2));
        }
    }
    Some(2)
}
