//! The label policy, pure: which folder of a label-style source (Gmail) each message is
//! copied into, which of its other labels become keywords, and what All Mail contributes.
//!
//! Priority of a message's labels (the first one is where its one copy goes):
//! 1. `INBOX`;
//! 2. user labels, alphabetically (case-insensitive, then exact);
//! 3. Sent; 4. Drafts; 5. Important; 6. Starred (\Flagged).
//!
//! Trash and Spam stay apart: they are copied as folders, never merged with others.
//! Messages only in All Mail (\All) go to the archive folder.

use std::collections::{BTreeMap, HashMap, HashSet};

/// What a source folder is to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Inbox,
    User,
    Sent,
    Drafts,
    Important,
    Starred,
    /// `[Gmail]/All Mail` (\All): every message not in Trash/Spam.
    AllMail,
    /// Trash and Spam: copied as folders, not deduplicated.
    Apart,
}

impl Role {
    /// Whether the folder is a label (a message in it has that label).
    pub fn is_label(self) -> bool {
        !matches!(self, Role::AllMail | Role::Apart)
    }
}

/// A label's place in the priority order (smaller first).
pub fn priority(role: Role, folder: &str) -> (u8, String, String) {
    let rank = match role {
        Role::Inbox => 0,
        Role::User => 1,
        Role::Sent => 2,
        Role::Drafts => 3,
        Role::Important => 4,
        Role::Starred => 5,
        Role::AllMail | Role::Apart => 9,
    };
    (rank, folder.to_lowercase(), folder.to_owned())
}

/// A label name as an IMAP keyword atom (RFC 3501 `flag-keyword`): the folder's display
/// name with every character that may not appear in an atom, or would confuse a reader
/// (space, `( ) [ ] { } % * " \`, controls, non-ASCII), replaced by `_`; `/` stays as
/// the hierarchy mark. A leading `$` (reserved for standard keywords) becomes `_` too.
/// `[Gmail]/Starred` becomes `_Gmail_/Starred`; `Reisen 2024` becomes `Reisen_2024`.
pub fn keyword_atom(label: &str) -> String {
    let mut out: String = label
        .chars()
        .map(|c| {
            let ok = c.is_ascii_graphic()
                && !matches!(
                    c,
                    '(' | ')' | '{' | '}' | '%' | '*' | '"' | '\\' | '[' | ']'
                );
            if ok {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('$') {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// One occurrence of a message in a source folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub folder: String,
    pub role: Role,
    pub uid: u32,
}

/// The policy's choice for one source folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Source UIDs this folder copies (the others are copied elsewhere, or already were).
    pub copy: HashSet<u32>,
    /// Keywords (other labels) each message of this folder carries on the target.
    pub keywords: HashMap<u32, Vec<String>>,
}

/// A message a later folder gets by `UID COPY` from its first folder's copy (a Gmail
/// target under "labels as folders": there a COPY adds a label, not a second message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FurtherCopy {
    pub identity: String,
    /// The source folder whose copy is the original.
    pub home: String,
    pub folder: String,
    pub uid: u32,
}

/// What the policy decided, and the figures to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub folders: BTreeMap<String, Selection>,
    pub further: Vec<FurtherCopy>,
    /// All Mail: messages also in label folders, and archived-only ones.
    pub all_mail_labelled: u64,
    pub archived_only: u64,
    /// Messages seen in more than one label folder (copied once, default policy).
    pub multi_labelled: u64,
    /// Messages already copied by an earlier run under their identity.
    pub already_copied: u64,
}

/// The policy options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyOptions {
    /// One copy per label folder instead of one copy per message.
    pub labels_as_folders: bool,
    /// The target keeps labels as COPYs of one message (X-GM-EXT-1 on the target).
    pub target_is_gmail: bool,
}

/// Decides, for messages grouped by identity, where each is copied. `done` holds the
/// identities an earlier run copied already, with the source folder of that copy.
pub fn decide(
    groups: &BTreeMap<String, Vec<Occurrence>>,
    done: &HashMap<String, String>,
    options: PolicyOptions,
) -> Decision {
    let mut d = Decision::default();
    for (identity, occurrences) in groups {
        let mut labels: Vec<&Occurrence> =
            occurrences.iter().filter(|o| o.role.is_label()).collect();
        labels.sort_by_key(|o| priority(o.role, &o.folder));
        labels.dedup_by(|a, b| a.folder == b.folder);
        let all_mail = occurrences.iter().find(|o| o.role == Role::AllMail);
        if let Some(all) = all_mail {
            d.folders.entry(all.folder.clone()).or_default();
            if labels.is_empty() {
                d.archived_only += 1;
            } else {
                d.all_mail_labelled += 1;
            }
        }
        for o in occurrences.iter().filter(|o| o.role == Role::Apart) {
            // Apart folders copy everything themselves; nothing to decide.
            d.folders
                .entry(o.folder.clone())
                .or_default()
                .copy
                .insert(o.uid);
        }
        if labels.len() > 1 {
            d.multi_labelled += 1;
        }
        let earlier = done.get(identity);
        if earlier.is_some() && !options.labels_as_folders {
            d.already_copied += 1;
        }
        if labels.is_empty() {
            if let Some(all) = all_mail {
                let sel = d.folders.entry(all.folder.clone()).or_default();
                if earlier.is_none() || options.labels_as_folders {
                    sel.copy.insert(all.uid);
                }
            }
            continue;
        }
        if options.labels_as_folders {
            let home = labels[0];
            for (i, o) in labels.iter().enumerate() {
                let sel = d.folders.entry(o.folder.clone()).or_default();
                if i == 0 || !options.target_is_gmail {
                    sel.copy.insert(o.uid);
                } else {
                    d.further.push(FurtherCopy {
                        identity: identity.clone(),
                        home: home.folder.clone(),
                        folder: o.folder.clone(),
                        uid: o.uid,
                    });
                }
            }
            continue;
        }
        // Default: one copy, in the first label's folder (or where an earlier run put it).
        let home = earlier
            .and_then(|f| labels.iter().find(|o| &o.folder == f))
            .copied()
            .unwrap_or(labels[0]);
        for o in &labels {
            let keywords: Vec<String> = labels
                .iter()
                .filter(|l| l.folder != o.folder)
                .map(|l| keyword_atom(&l.folder))
                .collect();
            let sel = d.folders.entry(o.folder.clone()).or_default();
            if !keywords.is_empty() {
                sel.keywords.insert(o.uid, keywords);
            }
            if earlier.is_none() && o.folder == home.folder {
                sel.copy.insert(o.uid);
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occ(folder: &str, role: Role, uid: u32) -> Occurrence {
        Occurrence {
            folder: folder.into(),
            role,
            uid,
        }
    }

    fn groups(list: &[(&str, Vec<Occurrence>)]) -> BTreeMap<String, Vec<Occurrence>> {
        list.iter()
            .map(|(i, o)| (i.to_string(), o.clone()))
            .collect()
    }

    #[test]
    fn priority_is_inbox_then_user_labels_alphabetically_then_system_labels() {
        let mut labels = [
            (Role::Starred, "[Gmail]/Starred"),
            (Role::Sent, "[Gmail]/Sent Mail"),
            (Role::User, "travel"),
            (Role::Important, "[Gmail]/Important"),
            (Role::User, "Work"),
            (Role::Drafts, "[Gmail]/Drafts"),
            (Role::Inbox, "INBOX"),
            (Role::User, "Banking"),
        ];
        labels.sort_by_key(|(r, f)| priority(*r, f));
        let order: Vec<&str> = labels.iter().map(|(_, f)| *f).collect();
        assert_eq!(
            order,
            [
                "INBOX",
                "Banking",
                "travel",
                "Work",
                "[Gmail]/Sent Mail",
                "[Gmail]/Drafts",
                "[Gmail]/Important",
                "[Gmail]/Starred"
            ]
        );
    }

    #[test]
    fn keyword_atoms_are_valid_atoms() {
        assert_eq!(keyword_atom("Work"), "Work");
        assert_eq!(keyword_atom("Reisen 2024"), "Reisen_2024");
        assert_eq!(keyword_atom("[Gmail]/Starred"), "_Gmail_/Starred");
        assert_eq!(keyword_atom("$Junk"), "_Junk");
        assert_eq!(keyword_atom("a(b)\"c\\d%e*f{g}"), "a_b__c_d_e_f_g_");
        assert_eq!(keyword_atom("Entwürfe"), "Entw_rfe");
        assert_eq!(keyword_atom(""), "_");
        for label in ["x y", "\\Seen", "ü", "[a]"] {
            let k = keyword_atom(label);
            assert!(!k.starts_with('\\'));
            assert!(k.bytes().all(|b| b.is_ascii_graphic()), "{k}");
        }
    }

    #[test]
    fn default_policy_copies_once_with_other_labels_as_keywords() {
        let g = groups(&[
            (
                "m1",
                vec![
                    occ("Work", Role::User, 1),
                    occ("INBOX", Role::Inbox, 5),
                    occ("Travel", Role::User, 2),
                    occ("[Gmail]/All Mail", Role::AllMail, 10),
                ],
            ),
            ("m2", vec![occ("[Gmail]/All Mail", Role::AllMail, 11)]),
            (
                "m3",
                vec![
                    occ("Sent", Role::Sent, 3),
                    occ("Work", Role::User, 4),
                    occ("[Gmail]/All Mail", Role::AllMail, 12),
                ],
            ),
            ("m4", vec![occ("Trash", Role::Apart, 1)]),
        ]);
        let d = decide(&g, &HashMap::new(), PolicyOptions::default());
        let inbox = &d.folders["INBOX"];
        assert_eq!(inbox.copy, HashSet::from([5]));
        assert_eq!(inbox.keywords[&5], vec!["Travel", "Work"]);
        assert_eq!(d.folders["Work"].copy, HashSet::from([4]));
        assert_eq!(d.folders["Work"].keywords[&4], vec!["Sent"]);
        assert_eq!(d.folders["Work"].keywords[&1], vec!["INBOX", "Travel"]);
        assert!(d.folders["Travel"].copy.is_empty());
        assert!(d.folders["Sent"].copy.is_empty());
        assert_eq!(d.folders["[Gmail]/All Mail"].copy, HashSet::from([11]));
        assert_eq!(d.folders["Trash"].copy, HashSet::from([1]));
        assert_eq!((d.all_mail_labelled, d.archived_only), (2, 1));
        assert_eq!(d.multi_labelled, 2);
        assert!(d.further.is_empty());
    }

    #[test]
    fn a_rerun_copies_nothing_already_copied_even_after_label_changes() {
        // m1 went to INBOX before; now it has lost INBOX and gained Archive2.
        let g = groups(&[
            (
                "m1",
                vec![occ("Work", Role::User, 1), occ("Zeta", Role::User, 7)],
            ),
            ("m2", vec![occ("[Gmail]/All Mail", Role::AllMail, 11)]),
        ]);
        let done = HashMap::from([
            ("m1".to_string(), "INBOX".to_string()),
            ("m2".to_string(), "[Gmail]/All Mail".to_string()),
        ]);
        let d = decide(&g, &done, PolicyOptions::default());
        assert!(d.folders.values().all(|s| s.copy.is_empty()), "{d:?}");
        assert_eq!(d.already_copied, 2);
        assert_eq!(d.folders["Work"].keywords[&1], vec!["Zeta"]);
    }

    #[test]
    fn labels_as_folders_copies_per_label_and_only_unlabelled_from_all_mail() {
        let g = groups(&[
            (
                "m1",
                vec![
                    occ("Work", Role::User, 1),
                    occ("INBOX", Role::Inbox, 5),
                    occ("[Gmail]/All Mail", Role::AllMail, 10),
                ],
            ),
            ("m2", vec![occ("[Gmail]/All Mail", Role::AllMail, 11)]),
        ]);
        let options = PolicyOptions {
            labels_as_folders: true,
            target_is_gmail: false,
        };
        let d = decide(&g, &HashMap::new(), options);
        assert_eq!(d.folders["INBOX"].copy, HashSet::from([5]));
        assert_eq!(d.folders["Work"].copy, HashSet::from([1]));
        assert!(d.folders["Work"].keywords.is_empty());
        assert_eq!(d.folders["[Gmail]/All Mail"].copy, HashSet::from([11]));

        // A Gmail target: one APPEND (INBOX), then a COPY into Work.
        let d = decide(
            &g,
            &HashMap::new(),
            PolicyOptions {
                target_is_gmail: true,
                ..options
            },
        );
        assert_eq!(d.folders["INBOX"].copy, HashSet::from([5]));
        assert!(d.folders["Work"].copy.is_empty());
        assert_eq!(
            d.further,
            vec![FurtherCopy {
                identity: "m1".into(),
                home: "INBOX".into(),
                folder: "Work".into(),
                uid: 1
            }]
        );
    }
}
