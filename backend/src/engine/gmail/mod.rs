//! Label-style sources and targets (Gmail): one message shows up in the folder of each of
//! its labels and again in `[Gmail]/All Mail`; mail archived without a label is only there.
//!
//! `identity` says which listed messages are one message; `policy` (pure) decides where
//! each is copied; this file detects a label-style side, runs the listing pass before the
//! folders are copied, and, for a Gmail target under "labels as folders", adds the further
//! labels by `UID COPY` after the first folder's APPEND (see `further`).

pub mod further;
pub mod identity;
pub mod keywords;
pub mod policy;

use super::error::Result;
use super::uidmap::{UidMap, DONE};
use crate::engine::imap::capabilities::Capabilities;
use crate::engine::imap::conn::Conn;
use crate::engine::plan::folders::{FolderPlan, FolderTree, RemoteFolder, SpecialUse};
use policy::{Decision, Occurrence, PolicyOptions, Role, Selection};
use std::collections::{BTreeMap, HashMap};

/// Whether a source is treated as label-style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelMode {
    /// When it offers X-GM-EXT-1 or has a folder with SPECIAL-USE `\All`.
    #[default]
    Auto,
    On,
    Off,
}

impl std::str::FromStr for LabelMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(LabelMode::Auto),
            "on" | "true" | "yes" => Ok(LabelMode::On),
            "off" | "false" | "no" => Ok(LabelMode::Off),
            other => Err(format!(
                "labels = {other:?}: use \"auto\", \"on\" or \"off\""
            )),
        }
    }
}

/// The route's label settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelOptions {
    pub mode: LabelMode,
    /// One copy per label folder (All Mail gives only the unlabelled ones) instead of one
    /// copy per message with its other labels as keywords.
    pub labels_as_folders: bool,
    /// Where messages only in All Mail go (target folder, `/`-separated).
    pub archive_folder: String,
}

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions {
            mode: LabelMode::Auto,
            labels_as_folders: false,
            archive_folder: "Archive".into(),
        }
    }
}

pub const GMAIL_CAPABILITY: &str = "X-GM-EXT-1";

/// Whether the source shows labels as folders.
pub fn is_label_style(caps: &Capabilities, tree: &FolderTree, mode: LabelMode) -> bool {
    match mode {
        LabelMode::On => true,
        LabelMode::Off => false,
        LabelMode::Auto => {
            // The attribute, not the name: a folder merely called "All Mail" is a folder.
            caps.has(GMAIL_CAPABILITY)
                || tree.folders.iter().any(|f| {
                    f.selectable && f.attributes.iter().any(|a| a.eq_ignore_ascii_case("\\All"))
                })
        }
    }
}

/// The policy role of a source folder.
pub fn role_of(folder: &RemoteFolder) -> Role {
    if folder.is_inbox() {
        return Role::Inbox;
    }
    let important = folder
        .attributes
        .iter()
        .any(|a| a.eq_ignore_ascii_case("\\Important"))
        || (folder.path.len() == 2
            && folder.path[0].starts_with('[')
            && folder.path[1].eq_ignore_ascii_case("Important"));
    if important {
        return Role::Important;
    }
    match folder.special {
        Some(SpecialUse::All) => Role::AllMail,
        Some(SpecialUse::Trash | SpecialUse::Junk) => Role::Apart,
        Some(SpecialUse::Sent) => Role::Sent,
        Some(SpecialUse::Drafts) => Role::Drafts,
        Some(SpecialUse::Flagged) => Role::Starred,
        _ => Role::User,
    }
}

/// What the listing pass found and the policy decided, for the folder copies.
#[derive(Debug, Clone, Default)]
pub struct LabelPlan {
    pub decision: Decision,
    /// (source folder, UID) -> identity, for the UID map.
    pub identities: HashMap<(String, u32), String>,
    /// Each listed folder's UIDVALIDITY.
    pub validity: HashMap<String, u32>,
    /// What the policy did, in words, for the plan and the report.
    pub notes: Vec<String>,
    /// Copies made by earlier runs that get labels the message gained since.
    pub keyword_updates: Vec<keywords::KeywordUpdate>,
}

impl LabelPlan {
    /// The policy's choice for a folder; `None` copies the folder as usual.
    pub fn selection(&self, folder: &str) -> Option<&Selection> {
        self.decision.folders.get(folder)
    }

    pub fn identity_of(&self, folder: &str, uid: u32) -> Option<String> {
        self.identities.get(&(folder.to_owned(), uid)).cloned()
    }
}

/// Lists every planned source folder, works out identities, and decides the policy.
pub async fn prepare(
    src: &mut Conn,
    plans: &[FolderPlan],
    map: &UidMap,
    options: &LabelOptions,
    target_is_gmail: bool,
) -> Result<LabelPlan> {
    let gmail_items = src.session().await?.capabilities().has(GMAIL_CAPABILITY);
    let rows = map.all_rows().await?;
    let mut plan = LabelPlan::default();
    let mut groups: BTreeMap<String, Vec<Occurrence>> = BTreeMap::new();
    let mut listed_folders = Vec::new();
    for fp in plans {
        let folder = fp.source.display();
        let role = role_of(&fp.source);
        let info = src.select(&fp.source.wire, true).await?;
        let listed = identity::list_folder(src, gmail_items).await?;
        plan.validity.insert(folder.clone(), info.uidvalidity);
        let stored: HashMap<u32, String> = rows
            .iter()
            .filter(|r| {
                r.source_folder == folder
                    && r.source_uidvalidity == info.uidvalidity
                    && r.state == DONE
            })
            .filter_map(|r| r.identity.clone().map(|i| (r.source_uid, i)))
            .collect();
        let unhashed: Vec<u32> = listed
            .iter()
            .filter(|m| m.gm_msgid.is_none() && !stored.contains_key(&m.meta.uid))
            .map(|m| m.meta.uid)
            .collect();
        let hashes = identity::header_hashes(src, &unhashed).await?;
        let bases: Vec<(u32, String)> = listed
            .iter()
            .map(|m| {
                let uid = m.meta.uid;
                let base = match stored.get(&uid) {
                    Some(s) => Some(identity::base_of(s).to_owned()),
                    None => identity::base_identity(m, hashes.get(&uid).map(String::as_str)),
                };
                // No identity (no header came, a date that does not parse): a message of
                // its own, so that it is copied rather than lost.
                let base = base.unwrap_or_else(|| format!("u:{folder}:{}:{uid}", info.uidvalidity));
                (uid, base)
            })
            .collect();
        for (uid, id) in identity::number_occurrences(&bases, &stored) {
            plan.identities.insert((folder.clone(), uid), id.clone());
            groups.entry(id).or_default().push(Occurrence {
                folder: folder.clone(),
                role,
                uid,
            });
        }
        tracing::info!(
            folder,
            messages = listed.len(),
            hashed = hashes.len(),
            ?role,
            "listed for the label policy"
        );
        listed_folders.push((folder, role, listed.len()));
    }
    let done: HashMap<String, String> = rows
        .iter()
        .filter(|r| r.state == DONE)
        .filter_map(|r| r.identity.clone().map(|i| (i, r.source_folder.clone())))
        .collect();
    let policy = PolicyOptions {
        labels_as_folders: options.labels_as_folders,
        target_is_gmail,
    };
    plan.decision = policy::decide(&groups, &done, policy);
    if !options.labels_as_folders {
        let done_rows: Vec<&super::uidmap::MapRow> = rows
            .iter()
            .filter(|r| r.state == DONE && r.identity.is_some())
            .collect();
        plan.keyword_updates = keywords::updates_for_moved(&done_rows, &groups);
    }
    for (folder, role, _) in &listed_folders {
        if *role != Role::Apart {
            plan.decision.folders.entry(folder.clone()).or_default();
        } else {
            // Trash and Spam are copied whole, as usual.
            plan.decision.folders.remove(folder);
        }
    }
    plan.notes = describe(&plan.decision, &listed_folders, options, target_is_gmail);
    Ok(plan)
}

fn describe(
    d: &Decision,
    folders: &[(String, Role, usize)],
    options: &LabelOptions,
    target_is_gmail: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    let policy = if options.labels_as_folders {
        "labels as folders (one copy per label folder)"
    } else {
        "one copy per message, in its first label's folder; other labels as keywords"
    };
    notes.push(format!("label-style source: {policy}"));
    for (folder, role, _) in folders {
        if *role == Role::AllMail {
            notes.push(format!(
                "{folder}: {} messages already in label folders, {} archived-only to {}",
                d.all_mail_labelled, d.archived_only, options.archive_folder
            ));
        }
    }
    if !options.labels_as_folders && d.multi_labelled > 0 {
        notes.push(format!(
            "{} messages with several labels: one copy each, the other labels as keywords",
            d.multi_labelled
        ));
    }
    if d.already_copied > 0 {
        notes.push(format!(
            "{} messages already copied by an earlier run under their identity",
            d.already_copied
        ));
    }
    if target_is_gmail && !d.further.is_empty() {
        notes.push(format!(
            "Gmail target: {} further labels added by UID COPY of the first copy",
            d.further.len()
        ));
    }
    for (folder, role, _) in folders {
        if *role == Role::Apart {
            notes.push(format!("{folder}: copied as a folder, not deduplicated"));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn tree(entries: &[(&str, &[&str])]) -> FolderTree {
        FolderTree::from_list(
            entries
                .iter()
                .map(|(n, a)| {
                    (
                        crate::engine::imap::name::WireName::from(*n),
                        Some('/'),
                        a.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
            "",
            HashSet::new(),
        )
    }

    #[test]
    fn label_style_is_the_capability_or_an_all_attribute_not_a_name() {
        let plain = Capabilities::from_atoms(["IMAP4rev1"]);
        let gmail = Capabilities::from_atoms(["IMAP4rev1", "X-GM-EXT-1"]);
        let by_name = tree(&[("INBOX", &[]), ("[Gmail]/All Mail", &[])]);
        let by_attribute = tree(&[("INBOX", &[]), ("Everything", &["\\All"])]);
        assert!(!is_label_style(&plain, &by_name, LabelMode::Auto));
        assert!(is_label_style(&plain, &by_attribute, LabelMode::Auto));
        assert!(is_label_style(&gmail, &by_name, LabelMode::Auto));
        assert!(!is_label_style(&gmail, &by_attribute, LabelMode::Off));
        assert!(is_label_style(&plain, &by_name, LabelMode::On));
        assert_eq!("ON".parse::<LabelMode>(), Ok(LabelMode::On));
        assert!("maybe".parse::<LabelMode>().is_err());
    }

    #[test]
    fn folder_roles() {
        let t = tree(&[
            ("INBOX", &[]),
            ("[Gmail]/All Mail", &["\\All"]),
            ("[Gmail]/Important", &[]),
            ("[Gmail]/Starred", &["\\Flagged"]),
            ("[Gmail]/Sent Mail", &["\\Sent"]),
            ("[Gmail]/Drafts", &["\\Drafts"]),
            ("[Gmail]/Spam", &["\\Junk"]),
            ("[Gmail]/Trash", &["\\Trash"]),
            ("Work/2024", &[]),
        ]);
        let role = |name: &str| role_of(t.folders.iter().find(|f| f.display() == name).unwrap());
        assert_eq!(role("INBOX"), Role::Inbox);
        assert_eq!(role("[Gmail]/All Mail"), Role::AllMail);
        assert_eq!(role("[Gmail]/Important"), Role::Important);
        assert_eq!(role("[Gmail]/Starred"), Role::Starred);
        assert_eq!(role("[Gmail]/Sent Mail"), Role::Sent);
        assert_eq!(role("[Gmail]/Drafts"), Role::Drafts);
        assert_eq!(role("[Gmail]/Spam"), Role::Apart);
        assert_eq!(role("[Gmail]/Trash"), Role::Apart);
        assert_eq!(role("Work/2024"), Role::User);
    }
}
