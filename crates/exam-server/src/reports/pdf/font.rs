//! The PDF's fonts: DejaVu Sans, regular and bold, built into the server (`assets/fonts/`,
//! with its licence) so that a report prints Vietnamese names — "Nguyễn Thị Hương", "Trần Văn
//! Đức" — the same on every computer, whatever fonts it has. The PDF standard's own fonts
//! cover Latin-1 only.
//!
//! Each font is embedded as a subset of the glyphs the report uses (a composite, CID-keyed
//! font: two bytes a glyph, `Identity-H`), with a `ToUnicode` map so that text can be searched,
//! copied and extracted (`pdftotext`) as the characters it shows. Text is not shaped: each
//! character is its font's glyph for it (Vietnamese, written precomposed as Unicode's NFC does,
//! needs nothing more); a character the font lacks shows as its empty box.

use std::collections::{BTreeMap, HashMap};

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Filter, Finish, Name, Pdf, Rect, Ref, Str};
use subsetter::GlyphRemapper;

use super::PdfError;

const REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// One embedded font, collecting the glyphs the document uses.
pub struct Font {
    data: &'static [u8],
    face: ttf_parser::Face<'static>,
    postscript: &'static str,
    units_per_em: f32,
    /// The glyphs used, renumbered for the subset.
    remapper: GlyphRemapper,
    /// The character each glyph of the subset stands for.
    unicode: BTreeMap<u16, char>,
    /// A character's glyph in the whole font, and its advance in font units.
    glyphs: HashMap<char, (u16, u16)>,
}

impl Font {
    pub fn regular() -> Result<Self, PdfError> {
        Self::new(REGULAR, "DejaVuSans")
    }

    pub fn bold() -> Result<Self, PdfError> {
        Self::new(BOLD, "DejaVuSans-Bold")
    }

    fn new(data: &'static [u8], postscript: &'static str) -> Result<Self, PdfError> {
        let face = ttf_parser::Face::parse(data, 0)
            .map_err(|e| PdfError::Font(format!("{postscript}: {e}")))?;
        Ok(Self {
            units_per_em: f32::from(face.units_per_em()),
            data,
            face,
            postscript,
            remapper: GlyphRemapper::new(),
            unicode: BTreeMap::new(),
            glyphs: HashMap::new(),
        })
    }

    /// A character as the font draws it: its glyph (0 when the font has none) and advance.
    fn glyph(&mut self, c: char) -> (u16, u16) {
        let face = &self.face;
        *self.glyphs.entry(c).or_insert_with(|| {
            let id = face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
            (id.0, face.glyph_hor_advance(id).unwrap_or(0))
        })
    }

    /// How wide `text` is at `size` points.
    pub fn width(&mut self, text: &str, size: f32) -> f32 {
        let units: u32 = text.chars().map(|c| u32::from(self.glyph(c).1)).sum();
        units as f32 * size / self.units_per_em
    }

    /// `text` as the subset's glyph ids, two bytes each (what a content stream shows).
    pub fn encode(&mut self, text: &str) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let (old, _) = self.glyph(c);
            let new = self.remapper.remap(old);
            if old != 0 {
                self.unicode.entry(new).or_insert(c);
            }
            bytes.extend_from_slice(&new.to_be_bytes());
        }
        bytes
    }

    /// Writes the font — its dictionaries, the subset and its character map — as `font`,
    /// with `next` the first free object number; returns the next free one.
    pub fn write(&self, pdf: &mut Pdf, font: Ref, next: i32) -> Result<i32, PdfError> {
        let [cid, descriptor, file, cmap] = [0, 1, 2, 3].map(|i| Ref::new(next + i));
        let subset = subsetter::subset(self.data, 0, &self.remapper)
            .map_err(|e| PdfError::Font(format!("{}: cannot subset: {e}", self.postscript)))?;
        // A subset's name starts with a tag of six capitals (ISO 32000-1 §9.6.4), the same
        // for the same glyphs.
        let tag: String = {
            let mut h: u32 = 2_166_136_261;
            for g in self.remapper.remapped_gids() {
                h = (h ^ u32::from(g)).wrapping_mul(16_777_619);
            }
            (0..6)
                .map(|i| char::from(b'A' + ((h >> (i * 5)) % 26) as u8))
                .collect()
        };
        let base = format!("{tag}+{}", self.postscript);
        let system = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };
        let scale = |v: f32| v * 1000.0 / self.units_per_em;

        pdf.type0_font(font)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(cmap);

        let widths: Vec<f32> = self
            .remapper
            .remapped_gids()
            .map(|g| {
                scale(f32::from(
                    self.face
                        .glyph_hor_advance(ttf_parser::GlyphId(g))
                        .unwrap_or(0),
                ))
            })
            .collect();
        let mut cid_font = pdf.cid_font(cid);
        cid_font
            .subtype(CidFontType::Type2)
            .base_font(Name(base.as_bytes()))
            .system_info(system)
            .font_descriptor(descriptor)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        cid_font.widths().consecutive(0, widths);
        cid_font.finish();

        let bbox = self.face.global_bounding_box();
        let weight = f32::from(self.face.weight().to_number());
        pdf.font_descriptor(descriptor)
            .name(Name(base.as_bytes()))
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(
                scale(f32::from(bbox.x_min)),
                scale(f32::from(bbox.y_min)),
                scale(f32::from(bbox.x_max)),
                scale(f32::from(bbox.y_max)),
            ))
            .italic_angle(0.0)
            .ascent(scale(f32::from(self.face.ascender())))
            .descent(scale(f32::from(self.face.descender())))
            .cap_height(scale(f32::from(
                self.face.capital_height().unwrap_or(self.face.ascender()),
            )))
            .stem_v(10.0 + 0.244 * (weight - 50.0))
            .font_file2(file);

        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&subset, 6);
        let mut stream = pdf.stream(file, &compressed);
        stream.filter(Filter::FlateDecode);
        stream.pair(
            Name(b"Length1"),
            i32::try_from(subset.len()).unwrap_or(i32::MAX),
        );
        stream.finish();

        let mut map = UnicodeCmap::new(Name(b"Custom"), system);
        for (glyph, c) in &self.unicode {
            map.pair(*glyph, *c);
        }
        let map = map.finish();
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&map, 6);
        pdf.cmap(cmap, &compressed).filter(Filter::FlateDecode);
        Ok(next + 4)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_font_draws_every_letter_of_vietnamese() {
        let mut font = Font::regular().unwrap();
        let letters = "ĂÂĐÊÔƠƯăâđêôơư\
                       ÀẢÃÁẠẰẲẴẮẶẦẨẪẤẬÈẺẼÉẸỀỂỄẾỆÌỈĨÍỊÒỎÕÓỌỒỔỖỐỘỜỞỠỚỢÙỦŨÚỤỪỬỮỨỰỲỶỸÝỴ\
                       àảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ";
        for c in letters.chars() {
            assert_ne!(font.glyph(c).0, 0, "{c} has no glyph");
        }
        let mut bold = Font::bold().unwrap();
        assert!(bold.width("Nguyễn Thị Hương", 10.0) > font.width("Nguyễn Thị Hương", 10.0));
    }

    #[test]
    fn a_glyph_keeps_its_number_and_its_character() {
        let mut font = Font::regular().unwrap();
        let first = font.encode("Đức");
        let again = font.encode("Đức");
        assert_eq!(first, again);
        assert_eq!(first.len(), 6);
        assert_eq!(font.unicode.values().collect::<String>(), "Đức");
    }
}
