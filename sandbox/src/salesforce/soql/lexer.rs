//! Turns SOQL text into tokens that remember where they started, so every syntax error can
//! point at its row and column the way Salesforce's `MALFORMED_QUERY` messages do.

use chrono::{DateTime, NaiveDate, Utc};

use super::error::{Position, SoqlError};

/// One lexical unit of SOQL.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// A field, object or relationship name, or a keyword (keywords are recognised by the
    /// parser, case-insensitively, because SOQL keywords are not reserved as field names).
    Identifier(String),
    /// A quoted string with its escapes resolved.
    Str(String),
    /// An unquoted number, kept as written so integers stay integers.
    Number(f64),
    /// An unquoted `YYYY-MM-DD` date literal.
    Date(NaiveDate),
    /// An unquoted datetime literal with its zone (`2026-12-06T06:00:00Z`,
    /// `2026-12-06T06:00:00.000+0000`, `2026-12-06T06:00:00-08:00`).
    DateTime(DateTime<Utc>),
    Comma,
    Dot,
    OpenParen,
    CloseParen,
    Equals,
    NotEquals,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    End,
}

/// A token and the text it came from (used verbatim in "unexpected token" messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub text: String,
    pub position: Position,
}

/// Splits `query` into tokens, ending with [`TokenKind::End`].
pub fn tokenize(query: &str) -> Result<Vec<Token>, SoqlError> {
    let mut lexer = Lexer {
        query,
        chars: query.char_indices().collect(),
        index: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let token = lexer.next_token()?;
        let at_end = token.kind == TokenKind::End;
        tokens.push(token);
        if at_end {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    query: &'a str,
    chars: Vec<(usize, char)>,
    index: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.index).map(|&(_, c)| c)
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.index + ahead).map(|&(_, c)| c)
    }

    fn byte_offset(&self) -> usize {
        self.chars
            .get(self.index)
            .map_or(self.query.len(), |&(offset, _)| offset)
    }

    fn position(&self) -> Position {
        Position::of_offset(self.query, self.byte_offset())
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.index += 1;
        }
    }

    fn next_token(&mut self) -> Result<Token, SoqlError> {
        let position = self.position();
        let start = self.byte_offset();
        let Some(c) = self.peek() else {
            return Ok(Token {
                kind: TokenKind::End,
                text: String::new(),
                position,
            });
        };
        let kind = match c {
            '\'' => self.string(position)?,
            c if c.is_ascii_digit() => self.number_or_date(position)?,
            '-' | '+' if self.peek_at(1).is_some_and(|n| n.is_ascii_digit()) => {
                self.number_or_date(position)?
            }
            c if c.is_alphabetic() || c == '_' => self.identifier(),
            _ => self.punctuation(position)?,
        };
        let text = self.query[start..self.byte_offset()].to_owned();
        Ok(Token {
            kind,
            text,
            position,
        })
    }

    fn identifier(&mut self) -> TokenKind {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.index += 1;
        }
        TokenKind::Identifier(name)
    }

    /// A quoted string. SOQL escapes with a backslash (`\'`, `\\`, `\n`, …), not by doubling.
    fn string(&mut self, start: Position) -> Result<TokenKind, SoqlError> {
        self.index += 1;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(SoqlError::malformed(start, "unterminated string literal")),
                Some('\'') => {
                    self.index += 1;
                    return Ok(TokenKind::Str(value));
                }
                Some('\\') => {
                    let escape_position = self.position();
                    self.index += 1;
                    value.push(self.escaped_char(escape_position)?);
                }
                Some(c) => {
                    value.push(c);
                    self.index += 1;
                }
            }
        }
    }

    fn escaped_char(&mut self, at: Position) -> Result<char, SoqlError> {
        let escaped = match self.peek() {
            Some('\'') => '\'',
            Some('"') => '"',
            Some('\\') => '\\',
            Some('n') | Some('N') => '\n',
            Some('r') | Some('R') => '\r',
            Some('t') | Some('T') => '\t',
            Some('b') | Some('B') => '\u{8}',
            Some('f') | Some('F') => '\u{c}',
            Some('_') => '_',
            Some('%') => '%',
            other => {
                let shown = other.map(String::from).unwrap_or_default();
                return Err(SoqlError::malformed(
                    at,
                    format!(
                        "Invalid string literal '\\{shown}'. Illegal character sequence '\\{shown}' in string literal."
                    ),
                ));
            }
        };
        self.index += 1;
        Ok(escaped)
    }

    /// Numbers (`12`, `-3.5`) and unquoted dates (`2024-01-31`): both start with digits, so
    /// the lexer reads the longest run of digits, dashes and dots and decides by its shape.
    fn number_or_date(&mut self, start: Position) -> Result<TokenKind, SoqlError> {
        let mut text = String::new();
        if let Some(sign) = self.peek().filter(|c| *c == '-' || *c == '+') {
            text.push(sign);
            self.index += 1;
        }
        // A `+` only continues a datetime's zone offset (`…T06:00:00+00:00`).
        while let Some(c) = self.peek().filter(|c| {
            c.is_ascii_alphanumeric()
                || *c == '-'
                || *c == '.'
                || *c == ':'
                || (*c == '+' && text.len() >= 11 && text.as_bytes()[10] == b'T')
        }) {
            text.push(c);
            self.index += 1;
        }
        if let Some(date) = parse_date_literal(&text) {
            return Ok(TokenKind::Date(date));
        }
        if let Some(instant) = parse_datetime_literal(&text) {
            return Ok(TokenKind::DateTime(instant));
        }
        if is_plain_number(&text)
            && let Ok(number) = text.parse::<f64>()
        {
            return Ok(TokenKind::Number(number));
        }
        Err(SoqlError::malformed(
            start,
            format!("unexpected token: '{text}'"),
        ))
    }

    fn punctuation(&mut self, position: Position) -> Result<TokenKind, SoqlError> {
        let c = self.peek().unwrap_or_default();
        let next = self.peek_at(1);
        let (kind, width) = match (c, next) {
            (',', _) => (TokenKind::Comma, 1),
            ('.', _) => (TokenKind::Dot, 1),
            ('(', _) => (TokenKind::OpenParen, 1),
            (')', _) => (TokenKind::CloseParen, 1),
            ('=', _) => (TokenKind::Equals, 1),
            ('!', Some('=')) => (TokenKind::NotEquals, 2),
            ('<', Some('>')) => (TokenKind::NotEquals, 2),
            ('<', Some('=')) => (TokenKind::LessOrEqual, 2),
            ('<', _) => (TokenKind::Less, 1),
            ('>', Some('=')) => (TokenKind::GreaterOrEqual, 2),
            ('>', _) => (TokenKind::Greater, 1),
            _ => {
                return Err(SoqlError::malformed(
                    position,
                    format!("unexpected token: '{c}'"),
                ));
            }
        };
        self.index += width;
        Ok(kind)
    }
}

/// `YYYY-MM-DD` exactly (SOQL date literals are unquoted and zero-padded).
fn parse_date_literal(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// `YYYY-MM-DDThh:mm:ss[.sss](Z|±hh:mm|±hhmm)`: SOQL datetime literals are unquoted and
/// carry their zone.
pub(crate) fn parse_datetime_literal(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[10] != b'T' || parse_date_literal(&text[..10]).is_none() {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An optionally signed decimal without exponent, which is all SOQL accepts unquoted.
fn is_plain_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut parts = unsigned.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(query: &str) -> Vec<TokenKind> {
        tokenize(query)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn strings_resolve_backslash_escapes() {
        assert_eq!(
            kinds(r"'O\'Brien \\ x'"),
            vec![TokenKind::Str(r"O'Brien \ x".into()), TokenKind::End]
        );
    }

    #[test]
    fn dates_numbers_and_operators_are_distinguished() {
        assert_eq!(
            kinds("2024-02-29 12 -3.5 >= != <> <="),
            vec![
                TokenKind::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
                TokenKind::Number(12.0),
                TokenKind::Number(-3.5),
                TokenKind::GreaterOrEqual,
                TokenKind::NotEquals,
                TokenKind::NotEquals,
                TokenKind::LessOrEqual,
                TokenKind::End,
            ]
        );
    }

    #[test]
    fn datetimes_carry_their_zone() {
        let six = DateTime::parse_from_rfc3339("2026-12-06T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for text in [
            "2026-12-06T06:00:00Z",
            "2026-12-06T06:00:00.000Z",
            "2026-12-06T06:00:00+00:00",
            "2026-12-06T06:00:00.000+0000",
            "2026-12-05T22:00:00-08:00",
        ] {
            assert_eq!(
                kinds(&format!("X > {text}")),
                vec![
                    TokenKind::Identifier("X".into()),
                    TokenKind::Greater,
                    TokenKind::DateTime(six),
                    TokenKind::End
                ],
                "{text}"
            );
        }
        for bad in [
            "2026-12-06T06:00:00",
            "2026-12-06T25:00:00Z",
            "2026-12-06T06:00Z",
        ] {
            assert_eq!(tokenize(bad).unwrap_err().code, "MALFORMED_QUERY", "{bad}");
        }
    }

    #[test]
    fn an_impossible_date_is_malformed() {
        let err = tokenize("X >= 2023-02-30").unwrap_err();
        assert_eq!(err.code, "MALFORMED_QUERY");
        assert!(err.detail.contains("2023-02-30"), "{}", err.detail);
    }

    #[test]
    fn an_unterminated_string_is_malformed() {
        assert_eq!(tokenize("Name = 'abc").unwrap_err().code, "MALFORMED_QUERY");
    }

    #[test]
    fn tokens_know_their_row_and_column() {
        let tokens = tokenize("SELECT Id\n  FROM Account").unwrap();
        let from = &tokens[2];
        assert_eq!(from.text, "FROM");
        assert_eq!((from.position.row, from.position.column), (2, 3));
    }
}
