//! A login name as the import accepts it: trimmed, not empty, at most 255 characters,
//! no control, blank or invisible characters.

use std::fmt;
use thiserror::Error;

/// Longest user name accepted, in characters.
pub const MAX_USER_NAME_CHARS: usize = 255;

/// A user name that passed every check; only [`UserName::parse`] builds one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

/// Why a text is not a user name. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserNameError {
    #[error("empty")]
    Empty,
    #[error("is {chars} characters long; a user name can have at most {MAX_USER_NAME_CHARS}")]
    TooLong { chars: usize },
    #[error("contains a control character ({code}) at character {position}; remove it")]
    ControlCharacter { position: usize, code: String },
    #[error("contains {what} at character {position}; user names cannot contain spaces")]
    Blank { position: usize, what: &'static str },
    #[error(
        "contains an invisible character ({code}) at character {position}, often pasted \
         along with the name; retype the name"
    )]
    Invisible { position: usize, code: String },
    #[error(
        "contains \u{FFFD} at character {position}: the text was damaged by a wrong \
         encoding; save the file as UTF-8 and upload it again"
    )]
    Damaged { position: usize },
}

impl UserName {
    /// Checks `text` after trimming the spaces around it (a common copy-and-paste
    /// leftover that no server accepts in a login).
    pub fn parse(text: &str) -> Result<UserName, UserNameError> {
        let name = text.trim();
        if name.is_empty() {
            return Err(UserNameError::Empty);
        }
        for (i, c) in name.chars().enumerate() {
            let position = i + 1;
            if c.is_control() {
                return Err(UserNameError::ControlCharacter {
                    position,
                    code: code_point(c),
                });
            }
            if c == '\u{FFFD}' {
                return Err(UserNameError::Damaged { position });
            }
            if c.is_whitespace() {
                let what = match c {
                    ' ' => "a space",
                    '\u{A0}' => "a non-breaking space (often pasted from a web page or Word)",
                    _ => "a blank character",
                };
                return Err(UserNameError::Blank { position, what });
            }
            if is_invisible(c) {
                return Err(UserNameError::Invisible {
                    position,
                    code: code_point(c),
                });
            }
        }
        let chars = name.chars().count();
        if chars > MAX_USER_NAME_CHARS {
            return Err(UserNameError::TooLong { chars });
        }
        Ok(UserName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as compared for duplicates: without regard to case or Unicode
    /// composition (two rows that a server would take for one mailbox).
    pub fn duplicate_key(&self) -> String {
        crate::user_names::normalize(&self.0, crate::user_names::UserNameCase::CaseInsensitive)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Format characters that render as nothing but change what a server compares.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
    )
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_around_a_name_are_trimmed() {
        assert_eq!(
            UserName::parse("  alice@example.com ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn non_ascii_names_are_accepted() {
        assert_eq!(
            UserName::parse("jürgen.müller@例え.jp").unwrap().as_str(),
            "jürgen.müller@例え.jp"
        );
    }

    #[test]
    fn blank_names_are_empty() {
        assert_eq!(UserName::parse(" \t ").unwrap_err(), UserNameError::Empty);
    }

    #[test]
    fn inner_spaces_are_refused_with_their_position() {
        assert_eq!(
            UserName::parse("al ice").unwrap_err(),
            UserNameError::Blank {
                position: 3,
                what: "a space"
            }
        );
        assert!(matches!(
            UserName::parse("al\u{A0}ice").unwrap_err(),
            UserNameError::Blank { position: 3, what } if what.contains("non-breaking")
        ));
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(
            UserName::parse("al\u{7}ice").unwrap_err(),
            UserNameError::ControlCharacter {
                position: 3,
                code: "U+0007".into()
            }
        );
    }

    #[test]
    fn invisible_characters_are_refused() {
        assert_eq!(
            UserName::parse("alice\u{200B}").unwrap_err(),
            UserNameError::Invisible {
                position: 6,
                code: "U+200B".into()
            }
        );
    }

    #[test]
    fn names_damaged_by_a_wrong_encoding_are_refused() {
        assert_eq!(
            UserName::parse("j\u{FFFD}rgen").unwrap_err(),
            UserNameError::Damaged { position: 2 }
        );
    }

    #[test]
    fn names_longer_than_255_characters_are_refused() {
        assert!(UserName::parse(&"é".repeat(255)).is_ok());
        assert_eq!(
            UserName::parse(&"é".repeat(256)).unwrap_err(),
            UserNameError::TooLong { chars: 256 }
        );
    }

    #[test]
    fn duplicates_are_compared_without_regard_to_composition() {
        assert_eq!(
            UserName::parse("j\u{00FC}rgen@x.org")
                .unwrap()
                .duplicate_key(),
            UserName::parse("ju\u{0308}rgen@x.org")
                .unwrap()
                .duplicate_key()
        );
    }

    #[test]
    fn duplicates_are_compared_without_regard_to_case() {
        assert_eq!(
            UserName::parse("Ärger@X.org").unwrap().duplicate_key(),
            UserName::parse("ärger@x.ORG").unwrap().duplicate_key()
        );
    }
}
