//! What a server says it can do, read once per connection and asked by name.

use std::collections::HashSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    names: HashSet<String>,
}

impl Capabilities {
    pub fn from_atoms<'a>(atoms: impl IntoIterator<Item = &'a str>) -> Self {
        Capabilities {
            names: atoms
                .into_iter()
                .filter(|a| !a.eq_ignore_ascii_case("CAPABILITY"))
                .map(str::to_ascii_uppercase)
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.contains(&name.to_ascii_uppercase())
    }

    pub fn uidplus(&self) -> bool {
        self.has("UIDPLUS")
    }
    pub fn literal_plus(&self) -> bool {
        self.has("LITERAL+")
    }
    /// LITERAL- (RFC 7888): non-synchronising literals up to 4096 bytes.
    pub fn literal_minus(&self) -> bool {
        self.has("LITERAL-")
    }
    pub fn multiappend(&self) -> bool {
        self.has("MULTIAPPEND")
    }
    pub fn special_use(&self) -> bool {
        self.has("SPECIAL-USE")
    }
    pub fn binary(&self) -> bool {
        self.has("BINARY")
    }
    pub fn namespace(&self) -> bool {
        self.has("NAMESPACE")
    }
    /// CONDSTORE (RFC 7162; QRESYNC implies it): HIGHESTMODSEQ and CHANGEDSINCE.
    pub fn condstore(&self) -> bool {
        self.has("CONDSTORE") || self.has("QRESYNC")
    }
    pub fn starttls(&self) -> bool {
        self.has("STARTTLS")
    }

    /// `APPENDLIMIT=n` (RFC 7889): the largest message the server takes, if it says.
    pub fn append_limit(&self) -> Option<u64> {
        self.names
            .iter()
            .find_map(|n| n.strip_prefix("APPENDLIMIT=")?.parse().ok())
    }

    /// The names, sorted, for logs.
    pub fn summary(&self) -> String {
        let mut v: Vec<&str> = self.names.iter().map(String::as_str).collect();
        v.sort_unstable();
        v.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_limits_parse() {
        let caps =
            Capabilities::from_atoms(["IMAP4rev1", "uidplus", "LITERAL+", "APPENDLIMIT=35882577"]);
        assert!(caps.uidplus() && caps.literal_plus() && !caps.multiappend());
        assert_eq!(caps.append_limit(), Some(35_882_577));
    }
}
