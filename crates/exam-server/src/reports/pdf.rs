//! A report as PDF: A4 landscape (tables are wide), the title, the period and the report's
//! facts on the first page, then each table with its heading. A table longer than a page goes
//! on over as many as it needs, its heading and column names repeated on each; a cell wider
//! than its column wraps onto more lines (columns share the width by what they hold, so a long
//! name is not squeezed by a yes/no). Every page says when the report was made and "page n of
//! N".
//!
//! The same report gives the same bytes: no creation date is written, and the embedded font
//! subsets are named from the glyphs they hold ([`font`]).

pub mod font;

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::model::{Cell, Fact, Sheet, Table};
use crate::security::outage::human_duration;
use font::Font;

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("font: {0}")]
    Font(String),
}

/// A4, landscape, in points.
const PAGE_W: f32 = 841.89;
const PAGE_H: f32 = 595.28;
const MARGIN: f32 = 36.0;
const WIDTH: f32 = PAGE_W - 2.0 * MARGIN;
/// Where the running head ends and the footer begins.
const TOP: f32 = PAGE_H - MARGIN;
const BOTTOM: f32 = MARGIN + 8.0;

const CELL_SIZE: f32 = 8.0;
/// The most lines a cell shows (a page holds about 45).
const MAX_CELL_LINES: usize = 30;
/// Texts this short are never broken across lines (names, times, addresses).
const UNBROKEN_CHARS: usize = 24;
const LEADING: f32 = 10.0;
const PAD_X: f32 = 4.0;
const PAD_Y: f32 = 3.0;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// How a cell reads in the PDF.
pub fn cell_text(cell: &Cell) -> String {
    match cell {
        // Control characters (a tab in a client's text) have no glyph: a space instead.
        Cell::Text(s) => s
            .chars()
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect(),
        Cell::Int(n) => n.to_string(),
        Cell::Time(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        Cell::Ms(0) => "0".to_string(),
        Cell::Ms(ms) => human_duration(u64::try_from(*ms).unwrap_or(0)),
        Cell::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Cell::Term { words, .. } => (*words).to_string(),
        Cell::None => "—".to_string(),
    }
}

/// Lays out pages and draws on them.
struct Writer {
    regular: Font,
    bold: Font,
    pages: Vec<Content>,
    /// Where the next thing goes on the current page (from the bottom, in points).
    y: f32,
    running_head: String,
}

impl Writer {
    fn page(&mut self) -> &mut Content {
        if self.pages.is_empty() {
            self.pages.push(Content::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn text(&mut self, bold: bool, size: f32, gray: f32, x: f32, y: f32, text: &str) {
        let (name, font) = if bold {
            (BOLD, &mut self.bold)
        } else {
            (REGULAR, &mut self.regular)
        };
        let glyphs = font.encode(text);
        let page = self.page();
        page.set_fill_gray(gray);
        page.begin_text();
        page.set_font(name, size);
        page.next_line(x, y);
        page.show(Str(&glyphs));
        page.end_text();
    }

    fn width(&mut self, bold: bool, size: f32, text: &str) -> f32 {
        if bold {
            self.bold.width(text, size)
        } else {
            self.regular.width(text, size)
        }
    }

    fn fill(&mut self, gray: f32, x: f32, y: f32, w: f32, h: f32) {
        let page = self.page();
        page.set_fill_gray(gray);
        page.rect(x, y, w, h);
        page.fill_nonzero();
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        let head = self.running_head.clone();
        self.text(true, 8.0, 0.35, MARGIN, TOP + 10.0, &head);
        self.y = TOP - 6.0;
    }

    /// Starts a new page unless `height` still fits on this one.
    fn room_for(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.new_page();
        }
    }

    /// `text` in lines no wider than `width`: at spaces, within a word if it must.
    fn wrap(&mut self, bold: bool, size: f32, text: &str, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split(' ') {
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if self.width(bold, size, &candidate) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // The word alone, broken where it must be.
                for c in word.chars() {
                    let mut longer = line.clone();
                    longer.push(c);
                    if !line.is_empty() && self.width(bold, size, &longer) > width {
                        lines.push(std::mem::take(&mut line));
                        line.push(c);
                    } else {
                        line = longer;
                    }
                }
            }
            lines.push(line);
        }
        lines
    }

    fn title_block(&mut self, sheet: &Sheet) {
        self.y = TOP;
        self.text(true, 16.0, 0.0, MARGIN, self.y - 16.0, &sheet.title);
        self.text(false, 10.0, 0.2, MARGIN, self.y - 32.0, &sheet.subtitle);
        self.text(false, 8.0, 0.4, MARGIN, self.y - 45.0, &sheet.generated);
        self.y -= 62.0;
        // The facts, in two columns of label and value.
        // The title is the heading already.
        let facts: Vec<&Fact> = sheet.facts.iter().filter(|f| f.key != "title").collect();
        let half = facts.len().div_ceil(2);
        let column_w = (WIDTH - 24.0) / 2.0;
        let label_w = 130.0;
        let top = self.y;
        let mut lowest = top;
        for (column, facts) in facts.chunks(half.max(1)).enumerate() {
            let x = MARGIN + column as f32 * (column_w + 24.0);
            let mut y = top;
            for fact in facts {
                let value = cell_text(&fact.value);
                let lines = self.wrap(false, 9.0, &value, column_w - label_w);
                self.text(true, 9.0, 0.25, x, y - 9.0, fact.label);
                for (i, line) in lines.iter().enumerate() {
                    self.text(
                        false,
                        9.0,
                        0.0,
                        x + label_w,
                        y - 9.0 - i as f32 * 11.0,
                        line,
                    );
                }
                y -= 11.0 * lines.len().max(1) as f32 + 2.0;
            }
            lowest = lowest.min(y);
        }
        self.y = lowest - 14.0;
    }

    /// Column widths that fit the page. Each column needs at least its longest word, or the
    /// whole of a short text (a name, a time: [`UNBROKEN_CHARS`] characters or fewer are never
    /// broken); when everything fits on one line each gets what it needs, otherwise each gets
    /// its least and the rest of the width is shared by what more they would take.
    fn widths(&mut self, table: &Table, texts: &[Vec<String>]) -> Vec<f32> {
        let mut least = Vec::with_capacity(table.columns.len());
        let mut natural = Vec::with_capacity(table.columns.len());
        for (i, column) in table.columns.iter().enumerate() {
            let mut low = self.longest_word(true, column.label);
            let mut high = self.width(true, CELL_SIZE, column.label);
            for row in texts {
                for line in row[i].split('\n') {
                    let whole = self.width(false, CELL_SIZE, line);
                    high = high.max(whole);
                    low = low.max(if line.chars().count() <= UNBROKEN_CHARS {
                        whole
                    } else {
                        self.longest_word(false, line)
                    });
                }
            }
            let high = high.min(WIDTH * 0.45) + 2.0 * PAD_X;
            least.push((low.min(WIDTH * 0.3) + 2.0 * PAD_X).min(high));
            natural.push(high);
        }
        let (low_sum, high_sum) = (least.iter().sum::<f32>(), natural.iter().sum::<f32>());
        if high_sum <= WIDTH {
            natural
        } else if low_sum >= WIDTH {
            least.iter().map(|w| w * WIDTH / low_sum).collect()
        } else {
            let extra = WIDTH - low_sum;
            least
                .iter()
                .zip(&natural)
                .map(|(low, high)| low + extra * (high - low) / (high_sum - low_sum))
                .collect()
        }
    }

    fn longest_word(&mut self, bold: bool, text: &str) -> f32 {
        text.split([' ', '\n'])
            .map(|word| self.width(bold, CELL_SIZE, word))
            .fold(0.0, f32::max)
    }

    fn heading(&mut self, title: &str) {
        self.text(true, 11.0, 0.0, MARGIN, self.y - 11.0, title);
        self.y -= 18.0;
    }

    fn header_row(&mut self, table: &Table, widths: &[f32], right: &[bool]) {
        let lines: Vec<Vec<String>> = table
            .columns
            .iter()
            .zip(widths)
            .map(|(c, w)| self.wrap(true, CELL_SIZE, c.label, w - 2.0 * PAD_X))
            .collect();
        let height = row_height(&lines);
        self.fill(0.86, MARGIN, self.y - height, widths.iter().sum(), height);
        self.cells(true, &lines, widths, right);
        self.y -= height;
    }

    fn cells(&mut self, bold: bool, lines: &[Vec<String>], widths: &[f32], right: &[bool]) {
        let mut x = MARGIN;
        for ((cell, w), right) in lines.iter().zip(widths).zip(right) {
            for (i, line) in cell.iter().enumerate() {
                let indent = if *right {
                    w - PAD_X - self.width(bold, CELL_SIZE, line)
                } else {
                    PAD_X
                };
                let y = self.y - PAD_Y - CELL_SIZE - i as f32 * LEADING;
                self.text(bold, CELL_SIZE, 0.0, x + indent, y, line);
            }
            x += w;
        }
    }

    fn table(&mut self, table: &Table) {
        self.room_for(18.0 + 3.0 * (LEADING + 2.0 * PAD_Y));
        self.heading(table.title);
        if table.rows.is_empty() {
            self.text(false, 9.0, 0.4, MARGIN, self.y - 9.0, table.empty);
            self.y -= 24.0;
            return;
        }
        let texts: Vec<Vec<String>> = table
            .rows
            .iter()
            .map(|row| row.iter().map(cell_text).collect())
            .collect();
        let widths = self.widths(table, &texts);
        // A column of numbers (and blanks) is right-aligned, its heading too.
        let right: Vec<bool> = (0..table.columns.len())
            .map(|i| {
                table.rows.iter().any(|r| r[i].is_number())
                    && table
                        .rows
                        .iter()
                        .all(|r| r[i].is_number() || r[i] == Cell::None)
            })
            .collect();
        self.header_row(table, &widths, &right);
        for (n, text) in texts.iter().enumerate() {
            let lines: Vec<Vec<String>> = text
                .iter()
                .zip(&widths)
                .map(|(t, w)| {
                    let mut lines = self.wrap(false, CELL_SIZE, t, w - 2.0 * PAD_X);
                    // A row never outgrows a page: the rest of a very long text is cut.
                    if lines.len() > MAX_CELL_LINES {
                        lines.truncate(MAX_CELL_LINES);
                        if let Some(last) = lines.last_mut() {
                            last.push('…');
                        }
                    }
                    lines
                })
                .collect();
            let height = row_height(&lines);
            if self.y - height < BOTTOM {
                self.new_page();
                self.heading(&format!("{} (continued)", table.title));
                self.header_row(table, &widths, &right);
            }
            if n % 2 == 1 {
                self.fill(0.95, MARGIN, self.y - height, widths.iter().sum(), height);
            }
            self.cells(false, &lines, &widths, &right);
            self.y -= height;
        }
        self.y -= 16.0;
    }

    fn footers(&mut self, generated: &str) {
        let count = self.pages.len();
        for i in 0..count {
            let number = format!("Page {} of {count}", i + 1);
            let w = self.width(false, 8.0, &number);
            let glyphs = self.regular.encode(generated);
            let number_glyphs = self.regular.encode(&number);
            let page = &mut self.pages[i];
            page.set_fill_gray(0.4);
            for (x, text) in [(MARGIN, &glyphs), (PAGE_W - MARGIN - w, &number_glyphs)] {
                page.begin_text();
                page.set_font(REGULAR, 8.0);
                page.next_line(x, MARGIN - 12.0);
                page.show(Str(text));
                page.end_text();
            }
        }
    }
}

fn row_height(lines: &[Vec<String>]) -> f32 {
    let most = lines.iter().map(Vec::len).max().unwrap_or(1).max(1);
    most as f32 * LEADING + 2.0 * PAD_Y
}

/// The sheet as a PDF document.
pub fn render(sheet: &Sheet) -> Result<Vec<u8>, PdfError> {
    let mut writer = Writer {
        regular: Font::regular()?,
        bold: Font::bold()?,
        pages: Vec::new(),
        y: TOP,
        running_head: format!("{} · {}", sheet.title, sheet.subtitle),
    };
    writer.title_block(sheet);
    for table in &sheet.tables {
        writer.table(table);
    }
    writer.footers(&sheet.generated);

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let info = Ref::new(3);
    let (regular, bold) = (Ref::new(4), Ref::new(5));
    let mut next = 6;
    let page_ids: Vec<(Ref, Ref)> = (0..writer.pages.len())
        .map(|i| {
            let i = i32::try_from(i).unwrap_or(i32::MAX - 2);
            (Ref::new(next + 2 * i), Ref::new(next + 2 * i + 1))
        })
        .collect();
    next += 2 * i32::try_from(page_ids.len()).unwrap_or(0);

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().map(|(page, _)| *page))
        .count(i32::try_from(page_ids.len()).unwrap_or(i32::MAX));
    pdf.document_info(info)
        .title(TextStr(&sheet.title))
        .producer(TextStr("Exam Bank server"));
    for ((page_id, content_id), content) in page_ids.iter().zip(writer.pages) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(*content_id);
        page.resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        page.finish();
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&content.finish(), 6);
        pdf.stream(*content_id, &compressed)
            .filter(Filter::FlateDecode);
    }
    let next = writer.regular.write(&mut pdf, regular, next)?;
    writer.bold.write(&mut pdf, bold, next)?;
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reports::model::columns;

    fn sheet(rows: usize) -> Sheet {
        Sheet {
            title: "Exam report: Kiểm tra".into(),
            subtitle: "period".into(),
            generated: "now".into(),
            facts: vec![Fact::new("k", "Key", Cell::text("value"))],
            tables: vec![Table {
                name: "attempts",
                title: "Attempts",
                columns: columns(&[("student", "Student"), ("note", "Note")]),
                rows: (0..rows)
                    .map(|i| {
                        vec![
                            Cell::text(format!("Nguyễn Thị Hương {i}")),
                            Cell::text("word ".repeat(i % 50)),
                        ]
                    })
                    .collect(),
                empty: "none",
            }],
        }
    }

    #[test]
    fn a_long_table_goes_on_over_pages_and_the_same_sheet_gives_the_same_bytes() {
        let one = render(&sheet(3)).unwrap();
        assert!(one.starts_with(b"%PDF-"));
        let many = render(&sheet(400)).unwrap();
        let pages = |pdf: &[u8]| {
            pdf.windows(b"/Type /Page\n".len())
                .filter(|w| *w == b"/Type /Page\n")
                .count()
        };
        assert_eq!(pages(&one), 1);
        assert!(pages(&many) > 5, "{}", pages(&many));
        assert_eq!(render(&sheet(400)).unwrap(), many);
    }

    #[test]
    fn a_huge_cell_is_cut_and_a_control_character_is_a_space() {
        let mut huge = sheet(1);
        huge.tables[0].rows[0][1] = Cell::text("tab\there ".repeat(5000));
        let pdf = render(&huge).unwrap();
        let pages = pdf
            .windows(b"/Type /Page\n".len())
            .filter(|w| *w == b"/Type /Page\n")
            .count();
        assert!(pages <= 2, "{pages}");
        assert_eq!(cell_text(&Cell::text("a\tb\nc")), "a b\nc");
    }

    #[test]
    fn a_cell_wraps_at_spaces_and_within_a_word_when_it_must() {
        let mut writer = Writer {
            regular: Font::regular().unwrap(),
            bold: Font::bold().unwrap(),
            pages: Vec::new(),
            y: TOP,
            running_head: String::new(),
        };
        let lines = writer.wrap(false, 8.0, "Trần Văn Đức gửi bài", 50.0);
        assert!(lines.len() > 1, "{lines:?}");
        assert_eq!(lines.join(" "), "Trần Văn Đức gửi bài");
        let long = writer.wrap(false, 8.0, &"x".repeat(200), 50.0);
        assert!(long.len() > 3);
        assert_eq!(long.concat(), "x".repeat(200));
        assert!(long.iter().all(|l| writer.width(false, 8.0, l) <= 50.0));
        assert_eq!(writer.wrap(false, 8.0, "a\nb", 500.0), ["a", "b"]);
    }
}
