//! One mailbox, one name: the form of a user name that job keys are built from. The same
//! person typing `Alice@Example.org ` at sign-in and `alice@example.org` in an import
//! must land on the same job, or two workers copy one mailbox at once.

use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

/// How a server compares login names (`user_names` in a server profile).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserNameCase {
    /// `Alice` and `alice` are one mailbox (nearly every IMAP server): names are lower-cased.
    #[default]
    CaseInsensitive,
    /// The server tells `Alice` from `alice`: case is kept.
    CaseSensitive,
}

/// The name trimmed, in Unicode NFC (a composed `é` and `e` + combining accent are one
/// name), and lower-cased unless the server is case-sensitive.
pub fn normalize(name: &str, case: UserNameCase) -> String {
    let trimmed = name.trim();
    match case {
        // Lower-casing maps characters one by one, so composing afterwards gives the same
        // result whichever form the input came in.
        UserNameCase::CaseInsensitive => trimmed.to_lowercase().nfc().collect(),
        UserNameCase::CaseSensitive => trimmed.nfc().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_case_and_composition_do_not_make_another_name() {
        let composed = "J\u{00DC}RGEN@Example.org";
        let decomposed = "  ju\u{0308}rgen@example.ORG\t";
        assert_eq!(
            normalize(composed, UserNameCase::CaseInsensitive),
            "j\u{00FC}rgen@example.org"
        );
        assert_eq!(
            normalize(decomposed, UserNameCase::CaseInsensitive),
            "j\u{00FC}rgen@example.org"
        );
    }

    #[test]
    fn a_case_sensitive_server_keeps_case_but_still_composes() {
        assert_eq!(
            normalize(" Jo\u{0308}rg ", UserNameCase::CaseSensitive),
            "J\u{00F6}rg"
        );
    }

    #[test]
    fn the_profile_setting_reads_as_written_in_the_config() {
        #[derive(Deserialize)]
        struct Profile {
            #[serde(default)]
            user_names: UserNameCase,
        }
        let read = |text: &str| toml::from_str::<Profile>(text).unwrap().user_names;
        assert_eq!(read(""), UserNameCase::CaseInsensitive);
        assert_eq!(
            read("user_names = \"case_sensitive\""),
            UserNameCase::CaseSensitive
        );
        assert_eq!(
            read("user_names = \"case_insensitive\""),
            UserNameCase::CaseInsensitive
        );
    }
}
