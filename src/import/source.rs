//! The input as given → the stored source and its numbered lines.
//!
//! | input | how it is recognised | stored source (`sources/…`) | lines |
//! | --- | --- | --- | --- |
//! | text | anything else | the text as given | its lines |
//! | CSV / TSV | `.csv` / `.tsv` | the text as given | its lines, split into cells |
//! | HTML | `.html`/`.htm`, or starts like an HTML document | the article's text ([`super::html`]) as `<stem>.txt`, the page beside it | the article's lines |
//!
//! Line numbers are those of the stored source, counted as the loader counts
//! them (`str::lines`), so a row's `line` always points into the file it is
//! checked against.

use super::ImportError;
use super::html;

/// How the input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text (also Markdown): headings, entries and text tables.
    Text,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// A saved web page.
    Html,
}

impl Format {
    /// From the file name's extension, then the content.
    pub fn detect(name: &str, text: &str) -> Format {
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "html" | "htm" | "xhtml" | "shtml" => Format::Html,
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            _ if html::looks_like_html(text) => Format::Html,
            _ => Format::Text,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Csv => "CSV",
            Format::Tsv => "TSV",
            Format::Html => "HTML",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "txt" | "md" | "markdown" => Ok(Format::Text),
            "csv" => Ok(Format::Csv),
            "tsv" => Ok(Format::Tsv),
            "html" | "htm" => Ok(Format::Html),
            _ => Err(format!("unknown format {s:?} (text, csv, tsv or html)")),
        }
    }
}

/// One line of the stored source.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub text: String,
    /// The cells of a table row (CSV, TSV, HTML tables).
    pub cells: Option<Vec<String>>,
}

/// What is stored and what is read.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// File name under `sources/`.
    pub name: String,
    /// The text under `sources/<name>`: what the loader checks rows against.
    pub text: String,
    /// The input itself when it is not what is stored (an HTML page), with its file name.
    pub original: Option<(String, String)>,
    pub lines: Vec<Line>,
}

/// `<stem>.txt` for a page `<stem>.html`.
fn text_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => format!("{stem}.txt"),
        _ => format!("{name}.txt"),
    }
}

pub(crate) fn read(text: &str, name: &str, format: Format) -> Result<Source, ImportError> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Html => {
            let lines = html::extract(body);
            let mut stored: String = lines
                .iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            stored.push('\n');
            let stored_name = text_name(name);
            if stored_name == name {
                return Err(ImportError::InvalidName {
                    what: "source name",
                    value: name.to_string(),
                    why: "an HTML page must not be named .txt (its article text is stored under that name)",
                });
            }
            Ok(Source {
                name: stored_name,
                text: stored,
                original: Some((name.to_string(), text.to_string())),
                lines: lines
                    .into_iter()
                    .map(|l| Line {
                        text: l.text,
                        cells: l.cells,
                    })
                    .collect(),
            })
        }
        Format::Text | Format::Csv | Format::Tsv => {
            let lines = body
                .lines()
                .map(|l| Line {
                    text: l.to_string(),
                    cells: match format {
                        Format::Csv => csv_cells(l, ','),
                        Format::Tsv => Some(l.split('\t').map(|c| c.trim().to_string()).collect()),
                        _ => None,
                    },
                })
                .collect();
            Ok(Source {
                name: name.to_string(),
                text: text.to_string(),
                original: None,
                lines,
            })
        }
    }
}

/// One CSV record on one line (RFC 4180 quoting); `None` when a quoted field
/// does not end on this line (the line is then read as text, and reported if
/// it is inside the list).
pub(crate) fn csv_cells(line: &str, sep: char) -> Option<Vec<String>> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cell.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == sep {
            cells.push(std::mem::take(&mut cell).trim().to_string());
            at_start = true;
        } else {
            if !c.is_whitespace() {
                at_start = false;
            }
            cell.push(c);
        }
    }
    if quoted {
        return None;
    }
    cells.push(cell.trim().to_string());
    Some(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_cells(r#"团体一等奖,"浙商银行","数智""先锋""队", x "#, ','),
            Some(vec![
                "团体一等奖".to_string(),
                "浙商银行".into(),
                "数智\"先锋\"队".into(),
                "x".into()
            ])
        );
        assert_eq!(csv_cells("\"未结束,", ','), None);
    }

    #[test]
    fn formats() {
        assert_eq!(Format::detect("a.HTML", ""), Format::Html);
        assert_eq!(
            Format::detect("a.txt", "<!doctype html><html>"),
            Format::Html
        );
        assert_eq!(Format::detect("a.csv", ""), Format::Csv);
        assert_eq!(Format::detect("a.md", "# x"), Format::Text);
        assert_eq!(text_name("news.html"), "news.txt");
    }
}
