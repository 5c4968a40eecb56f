//! Thai text in a visible signature: shaped with rustybuzz (so tone marks
//! and vowels sit where the font places them over their base) and drawn
//! with Noto Sans Thai, embedded in the PDF as a CID-keyed TrueType font
//! (ISO 32000-1 §9.7) with a `ToUnicode` map, so the name can be copied
//! and searched as text. The font (SIL Open Font License, fonts/OFL.txt)
//! has Thai glyphs only; Latin text is drawn in Helvetica.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rustybuzz::{Face, UnicodeBuffer};

use crate::SignError;

const FONT: &[u8] = include_bytes!("../../fonts/NotoSansThai-Regular.ttf");
const FONT_NAME: &str = "NotoSansThai-Regular";

/// Whether `text` needs the Thai font.
pub(super) fn is_thai(text: &str) -> bool {
    text.chars().any(|c| ('\u{0e00}'..='\u{0e7f}').contains(&c))
}

fn face() -> Result<Face<'static>, SignError> {
    Face::from_slice(FONT, 0)
        .ok_or_else(|| SignError::Setting("the Thai font cannot be read".into()))
}

/// One glyph to draw: its id and its place, in em from the line's start.
pub(super) struct Placed {
    pub glyph: u16,
    pub x: f32,
    pub y: f32,
}

/// A shaped line: its glyphs, its width in em, and the text each glyph
/// begins (for `ToUnicode`).
pub(super) struct Shaped {
    pub glyphs: Vec<Placed>,
    pub width: f32,
    pub text_of: Vec<(u16, String)>,
}

/// Shapes `text` with the Thai font.
pub(super) fn shape(text: &str) -> Result<Shaped, SignError> {
    let face = face()?;
    let em = f32::from(face.units_per_em() as u16);
    let mut buffer = UnicodeBuffer::new();
    buffer.push_str(text);
    buffer.guess_segment_properties();
    let shaped = rustybuzz::shape(&face, &[], buffer);
    let infos = shaped.glyph_infos();
    let positions = shaped.glyph_positions();
    // Each cluster's text: from its start to the next cluster's.
    let mut starts: Vec<usize> = infos.iter().map(|i| i.cluster as usize).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut pen = 0.0f32;
    let mut glyphs = Vec::with_capacity(infos.len());
    let mut text_of = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (info, pos) in infos.iter().zip(positions) {
        let glyph = u16::try_from(info.glyph_id).unwrap_or(0);
        glyphs.push(Placed {
            glyph,
            x: (pen + pos.x_offset as f32) / em,
            y: pos.y_offset as f32 / em,
        });
        pen += pos.x_advance as f32;
        let start = info.cluster as usize;
        if seen.insert(start) {
            let end = starts
                .iter()
                .find(|s| **s > start)
                .copied()
                .unwrap_or(text.len());
            if let Some(part) = text.get(start..end) {
                text_of.push((glyph, part.to_owned()));
            }
        }
    }
    Ok(Shaped {
        glyphs,
        width: pen / em,
        text_of,
    })
}

/// The font's objects, in order: the Type 0 font (what a page's
/// resources name), its CID font, the descriptor, the font file and the
/// `ToUnicode` map; `ids` are their object numbers, and `used` the
/// glyphs drawn with the text each begins.
pub(super) fn objects(ids: [u32; 5], used: &[(u16, String)]) -> Result<Vec<Vec<u8>>, SignError> {
    let face = face()?;
    let em = f32::from(face.units_per_em() as u16);
    let scale = |v: i16| (f32::from(v) * 1000.0 / em).round() as i32;
    let [_, cid, descriptor, file, to_unicode] = ids;
    let mut widths = BTreeMap::new();
    for (glyph, _) in used {
        let advance = face
            .glyph_hor_advance(rustybuzz::ttf_parser::GlyphId(*glyph))
            .unwrap_or(0);
        widths.insert(*glyph, (f32::from(advance) * 1000.0 / em).round() as i32);
    }
    let mut w = String::new();
    for (glyph, width) in &widths {
        let _ = write!(w, "{glyph}[{width}]");
    }
    let bbox = face.global_bounding_box();
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n/CIDSystemInfo<</Registry(Adobe)/Ordering(UCS)/Supplement 0>>def\n/CMapName/Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000><FFFF>\nendcodespacerange\n",
    );
    let mut unique: BTreeMap<u16, &str> = BTreeMap::new();
    for (glyph, text) in used.iter().filter(|(_, t)| !t.is_empty()) {
        unique.entry(*glyph).or_insert(text);
    }
    let entries: Vec<(&u16, &&str)> = unique.iter().collect();
    for chunk in entries.chunks(100) {
        let _ = writeln!(cmap, "{} beginbfchar", chunk.len());
        for (glyph, text) in chunk {
            let utf16: String = text.encode_utf16().map(|u| format!("{u:04X}")).collect();
            let _ = writeln!(cmap, "<{glyph:04X}><{utf16}>");
        }
        cmap.push_str("endbfchar\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");

    let stream = |dict: String, data: &[u8]| {
        let mut out = dict.into_bytes();
        out.extend_from_slice(b"\nstream\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\nendstream");
        out
    };
    Ok(vec![
        format!(
            "<</Type/Font/Subtype/Type0/BaseFont/{FONT_NAME}/Encoding/Identity-H/DescendantFonts[{cid} 0 R]/ToUnicode {to_unicode} 0 R>>"
        )
        .into_bytes(),
        format!(
            "<</Type/Font/Subtype/CIDFontType2/BaseFont/{FONT_NAME}/CIDSystemInfo<</Registry(Adobe)/Ordering(Identity)/Supplement 0>>/FontDescriptor {descriptor} 0 R/CIDToGIDMap/Identity/DW 0/W[{w}]>>"
        )
        .into_bytes(),
        format!(
            "<</Type/FontDescriptor/FontName/{FONT_NAME}/Flags 32/FontBBox[{} {} {} {}]/ItalicAngle 0/Ascent {}/Descent {}/CapHeight {}/StemV 80/FontFile2 {file} 0 R>>",
            scale(bbox.x_min),
            scale(bbox.y_min),
            scale(bbox.x_max),
            scale(bbox.y_max),
            scale(face.ascender()),
            scale(face.descender()),
            scale(face.ascender()),
        )
        .into_bytes(),
        stream(
            format!("<</Length {}/Length1 {}>>", FONT.len(), FONT.len()),
            FONT,
        ),
        stream(format!("<</Length {}>>", cmap.len()), cmap.as_bytes()),
    ])
}
