//! Whose folders a LIST shows: NAMESPACE (RFC 2342) splits them into the user's own
//! (personal), other users' and shared ones. Only the personal ones are this mailbox:
//! on Cyrus a folder another user shared with this one is listed as `Other Users/bob/…`,
//! and copying it would put someone else's mail into the user's mailbox.
//! Without NAMESPACE, well-known prefixes of other users' and shared folders say it.

use crate::engine::imap::wire::{Response, Value};

/// Why a folder is left out of the plan.
pub const OTHER_USERS: &str = "another user's folder, not this mailbox";
pub const SHARED: &str = "a shared folder, not this mailbox";

/// Prefixes servers give other users' and shared folders, for servers without NAMESPACE
/// (Cyrus, Courier, Dovecot's and UW's defaults). A personal folder rarely starts so.
const WELL_KNOWN_OTHER_USERS: &[&str] = &["Other Users", "#user", "#users", "~"];
const WELL_KNOWN_SHARED: &[&str] = &[
    "Shared Folders",
    "Public Folders",
    "#shared",
    "#public",
    "#ftp",
    "#news",
];

/// The namespaces of one account: (prefix, delimiter) of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    pub personal: Vec<(String, Option<char>)>,
    pub other_users: Vec<(String, Option<char>)>,
    pub shared: Vec<(String, Option<char>)>,
    /// The server answered NAMESPACE (otherwise well-known prefixes decide).
    pub known: bool,
}

impl Namespaces {
    /// From the untagged replies of a NAMESPACE command.
    pub fn from_reply(untagged: &[Response]) -> Namespaces {
        let mut out = Namespaces::default();
        for r in untagged {
            let Response::Untagged(v) = r else { continue };
            if !v
                .first()
                .and_then(Value::as_atom)
                .is_some_and(|a| a.eq_ignore_ascii_case("NAMESPACE"))
            {
                continue;
            }
            out.known = true;
            out.personal = entries(v.get(1));
            out.other_users = entries(v.get(2));
            out.shared = entries(v.get(3));
        }
        out
    }

    /// The personal namespace's prefix (`INBOX.` on Courier-style servers, else empty).
    pub fn personal_prefix(&self) -> String {
        self.personal
            .first()
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }

    /// Why a folder (its wire name) is not this user's own, if it is not: it lies under an
    /// other-users or shared prefix that is longer than any personal prefix it is under.
    pub fn foreign(&self, wire: &str) -> Option<&'static str> {
        if wire.eq_ignore_ascii_case("INBOX") {
            return None;
        }
        let longest = |spaces: &[(String, Option<char>)]| {
            spaces
                .iter()
                .filter(|(p, d)| under(wire, p, *d))
                .map(|(p, _)| p.len())
                .max()
        };
        let personal = longest(&self.personal);
        let mut other = longest(&self.other_users);
        let mut shared = longest(&self.shared);
        if !self.known {
            let well_known = |names: &[&str]| {
                names
                    .iter()
                    .filter(|p| {
                        wire.len() > p.len()
                            && wire
                                .get(..p.len())
                                .is_some_and(|head| head.eq_ignore_ascii_case(p))
                            && (p.starts_with('~')
                                || !wire.as_bytes()[p.len()].is_ascii_alphanumeric())
                    })
                    .map(|p| p.len())
                    .max()
            };
            other = other.max(well_known(WELL_KNOWN_OTHER_USERS));
            shared = shared.max(well_known(WELL_KNOWN_SHARED));
        }
        let beats = |n: Option<usize>| n.is_some_and(|n| personal.is_none_or(|p| n > p));
        if beats(other) && other >= shared {
            Some(OTHER_USERS)
        } else if beats(shared) {
            Some(SHARED)
        } else {
            None
        }
    }
}

/// Whether `wire` is inside the namespace with this prefix: it starts with the prefix (a
/// prefix without its delimiter also names the folder itself, e.g. `Other Users`).
fn under(wire: &str, prefix: &str, delimiter: Option<char>) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let starts = wire.len() >= prefix.len()
        && wire
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
    let bare = delimiter
        .and_then(|d| prefix.strip_suffix(d))
        .is_some_and(|p| wire.eq_ignore_ascii_case(p));
    starts || bare
}

/// `(("prefix" "delim") ...)` or NIL.
fn entries(value: Option<&Value>) -> Vec<(String, Option<char>)> {
    value
        .and_then(Value::as_list)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_list)
                .filter_map(|ns| {
                    let prefix = ns.first().and_then(Value::as_text)?;
                    let delimiter = ns
                        .get(1)
                        .and_then(Value::as_text)
                        .and_then(|d| d.chars().next());
                    Some((prefix, delimiter))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(
        personal: &[(&str, char)],
        other: &[(&str, char)],
        shared: &[(&str, char)],
    ) -> Namespaces {
        let own = |l: &[(&str, char)]| l.iter().map(|(p, d)| (p.to_string(), Some(*d))).collect();
        Namespaces {
            personal: own(personal),
            other_users: own(other),
            shared: own(shared),
            known: true,
        }
    }

    #[test]
    fn cyrus_other_users_and_shared_folders_are_not_this_mailbox() {
        let cyrus = ns(
            &[("", '/')],
            &[("Other Users/", '/')],
            &[("Shared Folders/", '/')],
        );
        assert_eq!(cyrus.foreign("Other Users/bob/Projects"), Some(OTHER_USERS));
        assert_eq!(cyrus.foreign("Other Users"), Some(OTHER_USERS));
        assert_eq!(cyrus.foreign("Shared Folders/news"), Some(SHARED));
        assert_eq!(cyrus.foreign("INBOX"), None);
        assert_eq!(cyrus.foreign("Other Usersnames"), None);
        assert_eq!(cyrus.foreign("Projects/Other Users"), None);
    }

    #[test]
    fn a_personal_prefix_longer_than_the_shared_one_wins() {
        // Courier: personal `INBOX.`, shared `#shared.` and `shared.`.
        let courier = ns(
            &[("INBOX.", '.')],
            &[],
            &[("#shared.", '.'), ("shared.", '.')],
        );
        assert_eq!(courier.foreign("INBOX.Sent"), None);
        assert_eq!(courier.foreign("shared.lists"), Some(SHARED));
        // A shared prefix of "" (some Dovecots) never claims personal folders.
        let odd = ns(&[("INBOX.", '.')], &[], &[("", '.')]);
        assert_eq!(odd.foreign("INBOX.Sent"), None);
    }

    #[test]
    fn without_namespace_well_known_prefixes_decide() {
        let none = Namespaces::default();
        assert_eq!(none.foreign("Other Users/bob"), Some(OTHER_USERS));
        assert_eq!(none.foreign("#shared/lists"), Some(SHARED));
        assert_eq!(none.foreign("#public.x"), Some(SHARED));
        assert_eq!(none.foreign("~bob/mail"), Some(OTHER_USERS));
        assert_eq!(
            none.foreign("Shared Folders"),
            None,
            "the name alone is a folder"
        );
        assert_eq!(none.foreign("Shared Foldersx/y"), None);
        assert_eq!(none.foreign("Work"), None);
    }

    #[test]
    fn the_reply_is_read_in_its_three_parts() {
        let line = b"* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared Folders/\" \"/\"))\r\n";
        let parsed = crate::engine::imap::wire::parse_response(line).unwrap();
        let n = Namespaces::from_reply(&[parsed]);
        assert!(n.known);
        assert_eq!(n.personal, vec![(String::new(), Some('/'))]);
        assert_eq!(n.other_users, vec![("Other Users/".to_owned(), Some('/'))]);
        assert_eq!(n.shared, vec![("Shared Folders/".to_owned(), Some('/'))]);
    }
}
