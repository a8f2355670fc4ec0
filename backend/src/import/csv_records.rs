//! RFC 4180 records read straight from the uploaded bytes. Every field knows the physical
//! line it starts on and its byte span in the file, so an error can point at the right
//! line even after a quoted value that spans lines, and at the right byte when the file
//! is not UTF-8.
//!
//! Lenient where no ambiguity arises: LF, CRLF or a lone CR end a line; a quote inside an
//! unquoted value is kept as a quote. Strict where data would silently shift: text after
//! a closing quote, and a quote never closed, are reported.

use std::borrow::Cow;
use std::ops::Range;

/// Most times reading restarts after a quote that is never closed; each restart rescans
/// the rest of the file, so an unbounded number could take quadratic time.
const MAX_RESTARTS: u32 = 20;

/// One value of a record, unescaped.
#[derive(Debug)]
pub(super) struct RawField<'a> {
    /// The value's bytes, quotes removed and doubled quotes undone.
    pub content: Cow<'a, [u8]>,
    /// Physical line (from 1) the field starts on.
    pub line: u64,
    /// The field's bytes in the file, quotes included.
    pub span: Range<usize>,
}

/// Where reading went on after a quote that is never closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// At this line, the one after the opening quote.
    NextLine(u64),
    /// Nowhere: the quote was on the last line.
    EndOfFile,
    /// Nowhere: too many unclosed quotes already.
    Stopped,
}

/// A record whose quotes do not add up; its values cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum QuoteProblem {
    /// The quote opening field `field` (index) is never closed.
    Unterminated { field: usize, resume: Resume },
    /// Field `field` has text after its closing quote, on physical line `line`.
    TextAfterClosingQuote { field: usize, line: u64 },
}

/// One record (row) of the file.
#[derive(Debug)]
pub(super) struct RawRecord<'a> {
    /// Physical line the record starts on.
    pub line: u64,
    /// Physical line the record ends on (greater than `line` when a quoted value spans
    /// lines).
    pub end_line: u64,
    pub fields: Vec<RawField<'a>>,
    pub quote_problem: Option<QuoteProblem>,
}

impl RawRecord<'_> {
    /// An empty line, or one of only commas and blanks (spreadsheets write those for
    /// rows that once held something).
    pub fn is_blank(&self) -> bool {
        self.quote_problem.is_none()
            && self
                .fields
                .iter()
                .all(|f| f.content.iter().all(|&b| b == b' ' || b == b'\t'))
    }
}

/// A byte that is not UTF-8, located for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadUtf8 {
    /// Physical line of the byte.
    pub line: u64,
    /// The byte's value.
    pub byte: u8,
    /// Position of the byte in its line, counting bytes from 1.
    pub column: usize,
    /// Position of the byte in the file, counting bytes from 0.
    pub offset: usize,
}

impl RawField<'_> {
    /// The value as text, or where its first byte that is not UTF-8 sits in the file.
    pub fn text(&self, file: &[u8]) -> Result<&str, BadUtf8> {
        std::str::from_utf8(&self.content).map_err(|_| self.locate_bad_utf8(file))
    }

    fn locate_bad_utf8(&self, file: &[u8]) -> BadUtf8 {
        // Quotes are ASCII and never part of a multi-byte sequence, so the raw span is
        // invalid exactly where the unescaped content is.
        let raw = file.get(self.span.clone()).unwrap_or_default();
        let valid = match std::str::from_utf8(raw) {
            Err(e) => e.valid_up_to(),
            Ok(_) => 0,
        };
        let offset = self.span.start + valid;
        let before = &file[..offset.min(file.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let newlines_in_field = raw[..valid].iter().filter(|&&b| b == b'\n').count();
        BadUtf8 {
            line: self.line + newlines_in_field as u64,
            byte: file.get(offset).copied().unwrap_or(0),
            column: offset - line_start + 1,
            offset,
        }
    }
}

/// Reads records one after the other from `start` (after any byte order mark).
pub(super) struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
    restarts_left: u32,
}

impl<'a> Records<'a> {
    pub fn new(bytes: &'a [u8], start: usize) -> Self {
        Records {
            bytes,
            pos: start,
            line: 1,
            restarts_left: MAX_RESTARTS,
        }
    }

    fn is_delimiter_or_end(&self, at: usize) -> bool {
        matches!(self.bytes.get(at), None | Some(b',' | b'\r' | b'\n'))
    }

    /// Up to the next comma or line end.
    fn skip_unquoted(&mut self) {
        let rest = &self.bytes[self.pos..];
        self.pos += rest
            .iter()
            .position(|&b| matches!(b, b',' | b'\r' | b'\n'))
            .unwrap_or(rest.len());
    }

    /// A quoted value starting at `self.pos`. `Ok((content, junk))` where `junk` is the
    /// line of text found after the closing quote; `Err(())` when the quote never closes.
    fn quoted_field(&mut self) -> Result<(Cow<'a, [u8]>, Option<u64>), ()> {
        let bytes = self.bytes;
        self.pos += 1;
        let body_start = self.pos;
        let mut unescaped: Option<Vec<u8>> = None;
        let mut segment_start = body_start;
        loop {
            let rest = &bytes[self.pos..];
            let Some(i) = rest.iter().position(|&b| b == b'"' || b == b'\n') else {
                return Err(());
            };
            let at = self.pos + i;
            if bytes[at] == b'\n' {
                self.line += 1;
                self.pos = at + 1;
                continue;
            }
            if bytes.get(at + 1) == Some(&b'"') {
                // A doubled quote stands for one quote: keep the first, drop the second.
                unescaped
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(&bytes[segment_start..=at]);
                self.pos = at + 2;
                segment_start = self.pos;
                continue;
            }
            let mut content = match unescaped {
                Some(mut buf) => {
                    buf.extend_from_slice(&bytes[segment_start..at]);
                    Cow::Owned(buf)
                }
                None => Cow::Borrowed(&bytes[body_start..at]),
            };
            self.pos = at + 1;
            if self.is_delimiter_or_end(self.pos) {
                return Ok((content, None));
            }
            let junk_line = self.line;
            let junk_start = self.pos;
            self.skip_unquoted();
            content
                .to_mut()
                .extend_from_slice(&bytes[junk_start..self.pos]);
            return Ok((content, Some(junk_line)));
        }
    }

    /// After a quote opened at `open` on `line` ran to the end of the file: go on at the
    /// line after it, as if that quote had been closed there.
    fn resume_after_unterminated(&mut self, open: usize, line: u64) -> Resume {
        if self.restarts_left == 0 {
            self.pos = self.bytes.len();
            return Resume::Stopped;
        }
        self.restarts_left -= 1;
        match self.bytes[open..].iter().position(|&b| b == b'\n') {
            Some(i) if open + i + 1 < self.bytes.len() => {
                self.pos = open + i + 1;
                self.line = line + 1;
                Resume::NextLine(self.line)
            }
            _ => {
                self.pos = self.bytes.len();
                Resume::EndOfFile
            }
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = RawRecord<'a>;

    fn next(&mut self) -> Option<RawRecord<'a>> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let line = self.line;
        let mut fields = Vec::new();
        let mut quote_problem = None;
        let mut ended_by_newline = false;
        loop {
            let field_line = self.line;
            let start = self.pos;
            let content = if self.bytes.get(start) == Some(&b'"') {
                match self.quoted_field() {
                    Ok((content, junk_line)) => {
                        if let (Some(junk_line), None) = (junk_line, &quote_problem) {
                            quote_problem = Some(QuoteProblem::TextAfterClosingQuote {
                                field: fields.len(),
                                line: junk_line,
                            });
                        }
                        content
                    }
                    Err(()) => {
                        let field = fields.len();
                        fields.push(RawField {
                            content: Cow::Borrowed(&self.bytes[start + 1..]),
                            line: field_line,
                            span: start..self.bytes.len(),
                        });
                        let resume = self.resume_after_unterminated(start, field_line);
                        return Some(RawRecord {
                            line,
                            end_line: field_line,
                            fields,
                            quote_problem: Some(QuoteProblem::Unterminated { field, resume }),
                        });
                    }
                }
            } else {
                self.skip_unquoted();
                Cow::Borrowed(&self.bytes[start..self.pos])
            };
            fields.push(RawField {
                content,
                line: field_line,
                span: start..self.pos,
            });
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'\r') => {
                    self.pos += 1;
                    if self.bytes.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    }
                    self.line += 1;
                    ended_by_newline = true;
                    break;
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                    ended_by_newline = true;
                    break;
                }
                // The end of the file (a field only ever stops at a delimiter or the end).
                _ => break,
            }
        }
        let end_line = if ended_by_newline {
            self.line - 1
        } else {
            self.line
        };
        Some(RawRecord {
            line,
            end_line,
            fields,
            quote_problem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        Records::new(text, 0)
            .map(|r| {
                (
                    r.line,
                    r.fields
                        .iter()
                        .map(|f| String::from_utf8_lossy(&f.content).into_owned())
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn plain_fields_split_on_commas_and_line_ends() {
        assert_eq!(
            read(b"a,b\r\nc,d\ne,f"),
            vec![
                (1, vec!["a".into(), "b".into()]),
                (2, vec!["c".into(), "d".into()]),
                (3, vec!["e".into(), "f".into()]),
            ]
        );
    }

    #[test]
    fn a_trailing_comma_is_an_empty_last_field() {
        assert_eq!(read(b"a,\n"), vec![(1, vec!["a".into(), "".into()])]);
    }

    #[test]
    fn quoted_fields_keep_commas_newlines_and_doubled_quotes() {
        let records = read(b"\"a,1\",\"x\"\"y\"\"\",\"two\r\nlines\"\nnext,row\n");
        assert_eq!(
            records,
            vec![
                (
                    1,
                    vec!["a,1".into(), "x\"y\"".into(), "two\r\nlines".into()]
                ),
                (3, vec!["next".into(), "row".into()]),
            ]
        );
    }

    #[test]
    fn a_record_spanning_lines_knows_where_it_ends() {
        let records: Vec<_> = Records::new(b"h\n\"a\nb\nc\"\nz\n", 0).collect();
        assert_eq!((records[1].line, records[1].end_line), (2, 4));
        assert_eq!((records[2].line, records[2].end_line), (5, 5));
    }

    #[test]
    fn a_bare_quote_inside_an_unquoted_value_is_kept() {
        assert_eq!(
            read(b"pa\"ss,x"),
            vec![(1, vec!["pa\"ss".into(), "x".into()])]
        );
    }

    #[test]
    fn text_after_a_closing_quote_is_reported() {
        let records: Vec<_> = Records::new(b"a,\"b\"c,d\n", 0).collect();
        assert_eq!(
            records[0].quote_problem,
            Some(QuoteProblem::TextAfterClosingQuote { field: 1, line: 1 })
        );
        assert_eq!(records[0].fields.len(), 3);
    }

    #[test]
    fn an_unclosed_quote_is_reported_and_reading_goes_on_at_the_next_line() {
        let records: Vec<_> = Records::new(b"h\na,\"b\nc,d\n", 0).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[1].quote_problem,
            Some(QuoteProblem::Unterminated {
                field: 1,
                resume: Resume::NextLine(3)
            })
        );
        assert_eq!(records[2].line, 3);
        assert!(records[2].quote_problem.is_none());
    }

    #[test]
    fn blank_lines_and_comma_only_lines_are_blank() {
        let records: Vec<_> = Records::new(b"\n , ,\t\n\"\"\nx\n", 0).collect();
        let blank: Vec<bool> = records.iter().map(RawRecord::is_blank).collect();
        assert_eq!(blank, vec![true, true, true, false]);
    }

    #[test]
    fn a_byte_that_is_not_utf8_is_located_by_line_and_offset() {
        let file = b"h\n\"ok\nJ\xfcrgen\",x\n";
        let records: Vec<_> = Records::new(file, 0).collect();
        let bad = records[1].fields[0].text(file).unwrap_err();
        assert_eq!(
            bad,
            BadUtf8 {
                line: 3,
                byte: 0xFC,
                column: 2,
                offset: 7
            }
        );
    }
}
