//! Folders on both sides: listing them (LIST, NAMESPACE, LSUB), and the folder plan that
//! says where each source folder goes: admin overrides first, then SPECIAL-USE, then
//! well-known names in common languages, then the same name.

use super::namespaces::Namespaces;
use crate::engine::error::Result;
use crate::engine::imap::name::WireName;
use crate::engine::imap::session::Session;
use crate::engine::imap::utf7;
use crate::engine::imap::wire::{CommandBuilder, Response, Status, Value};
use std::collections::HashSet;

/// The role of a special folder (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
    All,
    Flagged,
}

impl SpecialUse {
    fn from_attribute(attr: &str) -> Option<SpecialUse> {
        match attr.to_ascii_lowercase().as_str() {
            "\\sent" => Some(SpecialUse::Sent),
            "\\drafts" => Some(SpecialUse::Drafts),
            "\\trash" => Some(SpecialUse::Trash),
            "\\junk" => Some(SpecialUse::Junk),
            "\\archive" => Some(SpecialUse::Archive),
            "\\all" => Some(SpecialUse::All),
            "\\flagged" => Some(SpecialUse::Flagged),
            _ => None,
        }
    }

    /// Names mail clients and servers give this folder, in several languages.
    fn known_names(self) -> &'static [&'static str] {
        match self {
            SpecialUse::Sent => &[
                "Sent",
                "Sent Items",
                "Sent Messages",
                "Sent Mail",
                "[Gmail]/Sent Mail",
                "[Google Mail]/Sent Mail",
                "INBOX/Sent",
                "Gesendet",
                "Gesendete Objekte",
                "Gesendete Elemente",
                "Envoyés",
                "Éléments envoyés",
                "Messages envoyés",
                "Enviados",
                "Elementos enviados",
                "Itens Enviados",
                "Posta inviata",
                "Inviati",
                "Verzonden",
                "Verzonden items",
                "Skickat",
                "Skickade objekt",
                "Sendt",
                "Sendte elementer",
                "Wysłane",
                "Odeslaná pošta",
                "Отправленные",
            ],
            SpecialUse::Drafts => &[
                "Drafts",
                "[Gmail]/Drafts",
                "[Google Mail]/Drafts",
                "Entwürfe",
                "Brouillons",
                "Borradores",
                "Rascunhos",
                "Bozze",
                "Concepten",
                "Utkast",
                "Kladder",
                "Kopie robocze",
                "Koncepty",
                "Черновики",
            ],
            SpecialUse::Trash => &[
                "Trash",
                "Deleted Items",
                "Deleted Messages",
                "Bin",
                "[Gmail]/Trash",
                "[Gmail]/Bin",
                "[Google Mail]/Trash",
                "[Google Mail]/Bin",
                "Papierkorb",
                "Gelöschte Elemente",
                "Gelöschte Objekte",
                "Corbeille",
                "Éléments supprimés",
                "Papelera",
                "Elementos eliminados",
                "Lixeira",
                "Itens Excluídos",
                "Cestino",
                "Posta eliminata",
                "Prullenbak",
                "Verwijderde items",
                "Papperskorgen",
                "Borttagna objekt",
                "Papirkurv",
                "Slettede elementer",
                "Kosz",
                "Koš",
                "Корзина",
                "Удаленные",
            ],
            SpecialUse::Junk => &[
                "Junk",
                "Spam",
                "Junk E-mail",
                "Junk Email",
                "Junk Mail",
                "Bulk Mail",
                "[Gmail]/Spam",
                "[Google Mail]/Spam",
                "Junk-E-Mail",
                "Unerwünscht",
                "Courrier indésirable",
                "Indésirables",
                "Correo no deseado",
                "Lixo Eletrônico",
                "Posta indesiderata",
                "Ongewenste e-mail",
                "Skräppost",
                "Uønsket e-post",
                "Wiadomości-śmieci",
                "Нежелательная почта",
            ],
            SpecialUse::Archive => &[
                "Archive",
                "Archives",
                "[Gmail]/Archive",
                "Archiv",
                "Archivo",
                "Archivio",
                "Arquivo",
                "Archief",
                "Arkiv",
                "Archiwum",
                "Архив",
            ],
            SpecialUse::All => &["[Gmail]/All Mail", "[Google Mail]/All Mail", "All Mail"],
            SpecialUse::Flagged => &["[Gmail]/Starred", "[Google Mail]/Starred"],
        }
    }

    fn from_name(display: &str) -> Option<SpecialUse> {
        [
            SpecialUse::Sent,
            SpecialUse::Drafts,
            SpecialUse::Trash,
            SpecialUse::Junk,
            SpecialUse::Archive,
            SpecialUse::All,
            SpecialUse::Flagged,
        ]
        .into_iter()
        .find(|role| {
            role.known_names()
                .iter()
                .any(|n| n.eq_ignore_ascii_case(display))
        })
    }
}

/// One folder as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFolder {
    /// The name exactly as the server sends it (modified UTF-7, or an old server's raw
    /// bytes), for commands.
    pub wire: WireName,
    /// The name's segments, decoded, without the personal namespace prefix.
    pub path: Vec<String>,
    pub attributes: Vec<String>,
    pub selectable: bool,
    pub special: Option<SpecialUse>,
}

impl RemoteFolder {
    /// The name as a user reads and writes it: segments joined with `/`.
    pub fn display(&self) -> String {
        self.path.join("/")
    }

    /// The folder's name in the UID map and the folder map, stable across runs: the
    /// display form for a standard (modified UTF-7) name, as ever; for any other name the
    /// display form with the exact source bytes (`Café (raw name Caf\xe9)`), so that two
    /// names that read alike (`Caf\xe9` in Latin-1, `Caf\xc3\xa9` in UTF-8) stay apart.
    pub fn map_key(&self) -> String {
        match self.wire.standard() {
            Some(_) => self.display(),
            None => format!("{} (raw name {})", self.display(), self.wire.escaped()),
        }
    }

    /// The map key earlier versions gave this folder, when it differs from
    /// [`RemoteFolder::map_key`]: the display form, for a name that is UTF-8 but not
    /// standard (those were read without loss before). Non-UTF-8 names had none (they
    /// could not be opened).
    pub fn legacy_map_key(&self) -> Option<String> {
        if self.wire.standard().is_some() || std::str::from_utf8(self.wire.as_bytes()).is_err() {
            return None;
        }
        Some(self.display())
    }

    /// How the name's bytes were read, when they are not standard modified UTF-7.
    pub fn name_note(&self) -> Option<&'static str> {
        self.wire.decoded().1.note()
    }

    /// For the plan and the report: what a non-standard source name became on the
    /// target, and why; `None` for standard names.
    pub fn renamed_note(&self, target_display: &str, target_wire: &str) -> Option<String> {
        let note = self.name_note()?;
        Some(format!(
            "{} -> {target_display} ({target_wire} on the target): {note}; servers take only modified UTF-7 names in CREATE",
            self.wire.escaped()
        ))
    }

    pub fn is_inbox(&self) -> bool {
        self.path.len() == 1 && self.path[0].eq_ignore_ascii_case("INBOX")
    }
}

/// All folders of one account, with its hierarchy delimiter and personal prefix.
#[derive(Debug, Clone, Default)]
pub struct FolderTree {
    pub folders: Vec<RemoteFolder>,
    pub delimiter: Option<char>,
    /// The personal namespace prefix on the wire (`INBOX.` on Courier-style servers).
    pub prefix: String,
    /// Wire names of subscribed folders.
    pub subscribed: HashSet<WireName>,
    /// Folders listed but not this user's own (other users', shared), with the reason:
    /// never planned, named in the plan and the report.
    pub left_out: Vec<(RemoteFolder, &'static str)>,
}

impl FolderTree {
    /// Builds a tree from raw LIST entries (wire name, delimiter, attributes).
    pub fn from_list(
        entries: Vec<(WireName, Option<char>, Vec<String>)>,
        prefix: &str,
        subscribed: HashSet<WireName>,
    ) -> FolderTree {
        let delimiter = entries.iter().find_map(|(_, d, _)| *d);
        let mut folders = Vec::new();
        for (wire, delim, attributes) in entries {
            // Old servers' raw 8-bit names are read as UTF-8 or Latin-1 (see `name`).
            let (decoded, _) = wire.decoded();
            let is_inbox = wire.as_bytes().eq_ignore_ascii_case(b"INBOX");
            let stripped = if is_inbox || prefix.is_empty() {
                decoded.as_str()
            } else {
                let decoded_prefix = utf7::decode(prefix).unwrap_or_else(|| prefix.to_owned());
                decoded
                    .strip_prefix(decoded_prefix.as_str())
                    .unwrap_or(&decoded)
            };
            if stripped.is_empty() {
                continue;
            }
            let path: Vec<String> = match delim {
                Some(d) => stripped.split(d).map(str::to_owned).collect(),
                None => vec![stripped.to_owned()],
            };
            let lower: Vec<String> = attributes.iter().map(|a| a.to_ascii_lowercase()).collect();
            let selectable = !lower
                .iter()
                .any(|a| a == "\\noselect" || a == "\\nonexistent");
            let special = attributes
                .iter()
                .find_map(|a| SpecialUse::from_attribute(a))
                .or_else(|| SpecialUse::from_name(&path.join("/")));
            folders.push(RemoteFolder {
                wire,
                path,
                attributes,
                selectable,
                special,
            });
        }
        folders.sort_by(|a, b| (!a.is_inbox(), &a.path).cmp(&(!b.is_inbox(), &b.path)));
        FolderTree {
            folders,
            delimiter,
            prefix: prefix.to_owned(),
            subscribed,
            left_out: Vec::new(),
        }
    }

    /// Moves the folders that are not this user's own (see [`Namespaces::foreign`]) out of
    /// the tree into [`FolderTree::left_out`].
    pub fn set_aside_foreign(&mut self, namespaces: &Namespaces) {
        let (foreign, own): (Vec<RemoteFolder>, Vec<RemoteFolder>) =
            std::mem::take(&mut self.folders)
                .into_iter()
                .partition(|f| namespaces.foreign(&f.wire.text()).is_some());
        self.folders = own;
        for f in foreign {
            if let Some(reason) = namespaces.foreign(&f.wire.text()) {
                if f.selectable {
                    tracing::info!(folder = %f.wire, reason, "left out of the folder plan");
                    self.left_out.push((f, reason));
                }
            }
        }
    }

    /// The wire name a decoded path gets on this server.
    pub fn wire_name(&self, path: &[String]) -> String {
        if path.len() == 1 && path[0].eq_ignore_ascii_case("INBOX") {
            return "INBOX".to_owned();
        }
        let delim = self.delimiter.unwrap_or('/');
        let segments: Vec<String> = path
            .iter()
            .map(|s| utf7::encode(&s.replace(delim, "_")))
            .collect();
        format!("{}{}", self.prefix, segments.join(&delim.to_string()))
    }

    /// An existing folder at this path whose name can be kept as a target's wire name
    /// (standard modified UTF-7: a raw 8-bit name is never given to a target).
    fn find_target(&self, path: &[String]) -> Option<(&RemoteFolder, &str)> {
        let f = self.find_path(path)?;
        Some((f, f.wire.standard()?))
    }

    fn find_path(&self, path: &[String]) -> Option<&RemoteFolder> {
        self.folders.iter().find(|f| f.path == path).or_else(|| {
            // Case-insensitive targets (Exchange) answer to any case.
            self.folders.iter().find(|f| {
                f.path.len() == path.len()
                    && f.path
                        .iter()
                        .zip(path)
                        .all(|(a, b)| a.eq_ignore_ascii_case(b))
            })
        })
    }
}

/// Admin choices: `--map A=B`, `--include`, `--exclude` (names with `/` separators;
/// patterns with `*` and `?`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderRules {
    pub map: Vec<(String, String)>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Copy Gmail's `[Gmail]/All Mail` (\All) too; off by default since it repeats every label.
    pub include_all_mail: bool,
    /// A label-style source (see `engine::gmail`): All Mail is planned into this target
    /// folder (`/`-separated), where the label policy sends the archived-only messages.
    pub all_mail_target: Option<String>,
}

impl FolderRules {
    /// Parses `A=B` overrides.
    pub fn parse_map(specs: &[String]) -> std::result::Result<Vec<(String, String)>, String> {
        specs
            .iter()
            .map(|s| match s.split_once('=') {
                Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => Ok((
                    a.trim().trim_matches('/').to_owned(),
                    b.trim().trim_matches('/').to_owned(),
                )),
                _ => Err(format!("--map {s:?} is not SOURCE=TARGET")),
            })
            .collect()
    }

    fn wanted(&self, display: &str) -> bool {
        if self.exclude.iter().any(|p| glob_match(p, display)) {
            return false;
        }
        self.include.is_empty() || self.include.iter().any(|p| glob_match(p, display))
    }
}

/// `*` any run of characters, `?` one character; case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Where one source folder goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPlan {
    pub source: RemoteFolder,
    pub target_path: Vec<String>,
    pub target_wire: String,
    /// The target folder exists already (otherwise it is created).
    pub target_exists: bool,
    /// The source folder is subscribed: subscribe the target too.
    pub subscribe: bool,
    /// Why the mapping was chosen, for the dry-run listing.
    pub reason: &'static str,
}

impl FolderPlan {
    pub fn target_display(&self) -> String {
        self.target_path.join("/")
    }
}

impl FolderPlan {
    /// Points the plan at another target folder (e.g. the one earlier runs used).
    pub fn retarget(&mut self, target: &FolderTree, path: Vec<String>, reason: &'static str) {
        let existing = target.find_target(&path);
        self.target_exists = existing.is_some_and(|(f, _)| f.selectable);
        self.target_wire = existing
            .map(|(_, w)| w.to_owned())
            .unwrap_or_else(|| target.wire_name(&path));
        self.target_path = existing.map(|(f, _)| f.path.clone()).unwrap_or(path);
        self.reason = reason;
    }
}

/// Decides the target of every selectable source folder. Pure: both trees are given.
pub fn plan_folders(
    source: &FolderTree,
    target: &FolderTree,
    rules: &FolderRules,
) -> Vec<FolderPlan> {
    let mut plans = Vec::new();
    for folder in &source.folders {
        let display = folder.display();
        if !folder.selectable || !rules.wanted(&display) {
            continue;
        }
        let archive = rules
            .all_mail_target
            .as_deref()
            .filter(|_| folder.special == Some(SpecialUse::All));
        if folder.special == Some(SpecialUse::All)
            && archive.is_none()
            && !rules.include_all_mail
            && !rules.include.iter().any(|p| glob_match(p, &display))
        {
            continue;
        }
        let (path, reason) = match archive {
            Some(name) => (
                name.split('/').map(str::to_owned).collect(),
                "archived-only mail (label policy)",
            ),
            None => target_path_for(folder, target, rules),
        };
        let existing = target.find_target(&path);
        let (target_path, target_wire) = match existing {
            Some((f, w)) => (f.path.clone(), w.to_owned()),
            None => (path.clone(), target.wire_name(&path)),
        };
        plans.push(FolderPlan {
            subscribe: source.subscribed.contains(&folder.wire),
            source: folder.clone(),
            target_exists: existing.is_some_and(|(f, _)| f.selectable),
            target_path,
            target_wire,
            reason,
        });
    }
    keep_special_folders_apart(&mut plans, target);
    plans
}

/// A special folder of the target (Sent, Trash...) takes one source folder by role, never
/// several: a source with both `Sent` (\Sent) and `Gesendete Objekte` would otherwise have
/// two folders merged into one, and the user would lose the difference. The source folder
/// carrying the SPECIAL-USE attribute wins, then one named exactly like the target folder,
/// then the first; the others keep their own names. Explicit `--map` merges stay merges.
fn keep_special_folders_apart(plans: &mut [FolderPlan], target: &FolderTree) {
    let by_role = |p: &FolderPlan| matches!(p.reason, "special-use" | "well-known name");
    let mut groups: std::collections::BTreeMap<Vec<String>, Vec<usize>> = Default::default();
    for (i, plan) in plans.iter().enumerate() {
        if by_role(plan) {
            groups.entry(plan.target_path.clone()).or_default().push(i);
        }
    }
    for (target_path, members) in groups {
        if members.len() < 2 {
            continue;
        }
        let rank = |i: &usize| {
            let source = &plans[*i].source;
            let has_attribute = source
                .attributes
                .iter()
                .any(|a| SpecialUse::from_attribute(a).is_some());
            let same_name = source
                .display()
                .eq_ignore_ascii_case(&target_path.join("/"));
            (!has_attribute, !same_name, *i)
        };
        let winner = members.iter().copied().min_by_key(rank);
        for i in members {
            if Some(i) != winner {
                let own = plans[i].source.path.clone();
                plans[i].retarget(target, own, "same name (target's special folder taken)");
            }
        }
    }
}

fn target_path_for(
    folder: &RemoteFolder,
    target: &FolderTree,
    rules: &FolderRules,
) -> (Vec<String>, &'static str) {
    let display = folder.display();
    // Longest --map prefix wins; it carries sub-folders along.
    let best = rules
        .map
        .iter()
        .filter(|(from, _)| {
            // `get`, not `[..]`: the prefix length may fall inside a non-ASCII character.
            display.eq_ignore_ascii_case(from)
                || (display
                    .get(..from.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(from))
                    && display.as_bytes().get(from.len()) == Some(&b'/'))
        })
        .max_by_key(|(from, _)| from.len());
    if let Some((from, to)) = best {
        let rest = display.get(from.len()..).unwrap_or_default();
        let mapped = format!("{to}{rest}");
        return (mapped.split('/').map(str::to_owned).collect(), "--map");
    }
    if folder.is_inbox() {
        return (vec!["INBOX".to_owned()], "INBOX");
    }
    if let Some(role) = folder
        .special
        .filter(|r| *r != SpecialUse::All && *r != SpecialUse::Flagged)
    {
        if let Some(t) = target.folders.iter().find(|t| {
            t.selectable
                && t.attributes
                    .iter()
                    .any(|a| SpecialUse::from_attribute(a) == Some(role))
        }) {
            return (t.path.clone(), "special-use");
        }
        if let Some(t) = target.find_path(&folder.path).filter(|t| t.selectable) {
            return (t.path.clone(), "same name");
        }
        if let Some(t) = target
            .folders
            .iter()
            .find(|t| t.selectable && t.special == Some(role))
        {
            return (t.path.clone(), "well-known name");
        }
    }
    (folder.path.clone(), "same name")
}

/// Lists an account's folders, namespace prefix and subscriptions.
pub async fn list_tree(session: &mut Session) -> Result<FolderTree> {
    let mut namespaces = Namespaces::default();
    if session.capabilities().namespace() {
        let reply = session
            .run_ok(CommandBuilder::new("NAMESPACE").build(), "NAMESPACE")
            .await?;
        namespaces = Namespaces::from_reply(&reply.untagged);
    }
    // A prefix of just INBOX's children, e.g. `INBOX.`.
    let prefix = namespaces.personal_prefix();
    let special =
        session.capabilities().special_use() && session.capabilities().has("LIST-EXTENDED");
    let list_cmd = if special {
        CommandBuilder::new("LIST \"\" \"*\" RETURN (SPECIAL-USE)")
    } else {
        CommandBuilder::new("LIST \"\" \"*\"")
    };
    let reply = session.run_ok(list_cmd.build(), "LIST").await?;
    let entries = list_entries(&reply.untagged, "LIST");
    let reply = session
        .run(CommandBuilder::new("LSUB \"\" \"*\"").build())
        .await?;
    let subscribed = if reply.done.status == Status::Ok {
        list_entries(&reply.untagged, "LSUB")
            .into_iter()
            .map(|(w, _, _)| w)
            .collect()
    } else {
        HashSet::new()
    };
    let mut tree = FolderTree::from_list(entries, &prefix, subscribed);
    tree.set_aside_foreign(&namespaces);
    Ok(tree)
}

fn list_entries(untagged: &[Response], verb: &str) -> Vec<(WireName, Option<char>, Vec<String>)> {
    let mut out = Vec::new();
    for r in untagged {
        let Response::Untagged(v) = r else { continue };
        if !v
            .first()
            .and_then(Value::as_atom)
            .is_some_and(|a| a.eq_ignore_ascii_case(verb))
        {
            continue;
        }
        let attributes = v
            .get(1)
            .and_then(Value::as_list)
            .map(|l| l.iter().filter_map(Value::as_text).collect())
            .unwrap_or_default();
        let delimiter = v
            .get(2)
            .and_then(Value::as_text)
            .and_then(|d| d.chars().next());
        // The name's exact bytes: an old server's 8-bit name is SELECTed with them.
        if let Some(name) = v.get(3).and_then(Value::as_name_bytes) {
            out.push((WireName::new(name), delimiter, attributes));
        }
    }
    out
}

/// Creates a target folder (and, when the server wants it, its missing parents).
pub async fn create_folder(
    session: &mut Session,
    target: &FolderTree,
    path: &[String],
) -> Result<()> {
    let wire = target.wire_name(path);
    let reply = session
        .run(
            CommandBuilder::new("CREATE")
                .string(wire.as_bytes())
                .build(),
        )
        .await?;
    if reply.done.status == Status::Ok || reply.done.code.as_deref() == Some("ALREADYEXISTS") {
        return Ok(());
    }
    if path.len() > 1 {
        // Some servers do not create parents themselves: make them, then retry once.
        for depth in 1..path.len() {
            let parent = target.wire_name(&path[..depth]);
            let _ = session
                .run(
                    CommandBuilder::new("CREATE")
                        .string(parent.as_bytes())
                        .build(),
                )
                .await?;
        }
        let retry = session
            .run(
                CommandBuilder::new("CREATE")
                    .string(wire.as_bytes())
                    .build(),
            )
            .await?;
        if retry.done.status == Status::Ok || retry.done.code.as_deref() == Some("ALREADYEXISTS") {
            return Ok(());
        }
    }
    // It may exist already (a race, or a server without ALREADYEXISTS): STATUS tells.
    if session.status(&wire).await.is_ok() {
        return Ok(());
    }
    Err(session.refused("CREATE", &reply.done))
}

/// [`create_folder`] with owned arguments, for retry loops.
pub async fn create_folder_owned(
    session: &mut Session,
    target: FolderTree,
    path: Vec<String>,
) -> Result<()> {
    create_folder(session, &target, &path).await
}

pub async fn subscribe_owned(session: &mut Session, wire: String) -> Result<()> {
    subscribe(session, &wire).await
}

pub async fn subscribe(session: &mut Session, wire: &str) -> Result<()> {
    let _ = session
        .run(
            CommandBuilder::new("SUBSCRIBE")
                .string(wire.as_bytes())
                .build(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, &str, &[&str])], prefix: &str) -> FolderTree {
        FolderTree::from_list(
            entries
                .iter()
                .map(|(n, d, a)| {
                    (
                        WireName::from(*n),
                        d.chars().next(),
                        a.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
            prefix,
            HashSet::new(),
        )
    }

    fn plan_of<'a>(plans: &'a [FolderPlan], source: &str) -> &'a FolderPlan {
        plans.iter().find(|p| p.source.display() == source).unwrap()
    }

    #[test]
    fn separators_prefixes_and_utf7_are_translated() {
        let src = tree(
            &[
                ("INBOX", ".", &[]),
                ("INBOX.Projekte", ".", &[]),
                ("INBOX.Projekte.Entw&APw-rfe 2", ".", &[]),
            ],
            "INBOX.",
        );
        let dst = tree(&[("INBOX", "/", &[])], "");
        let plans = plan_folders(&src, &dst, &FolderRules::default());
        assert_eq!(plan_of(&plans, "INBOX").target_wire, "INBOX");
        let p = plan_of(&plans, "Projekte/Entwürfe 2");
        assert_eq!(p.target_wire, "Projekte/Entw&APw-rfe 2");
        assert!(!p.target_exists);
    }

    #[test]
    fn two_source_folders_never_merge_into_one_special_target() {
        let src = tree(
            &[
                ("INBOX", "/", &[]),
                ("Sent", "/", &["\\Sent"]),
                ("Gesendete Objekte", "/", &[]),
                ("Corbeille", "/", &[]),
            ],
            "",
        );
        let dst = tree(
            &[
                ("INBOX", "/", &[]),
                ("Sent", "/", &["\\Sent"]),
                ("Trash", "/", &["\\Trash"]),
            ],
            "",
        );
        let plans = plan_folders(&src, &dst, &FolderRules::default());
        assert_eq!(plan_of(&plans, "Sent").target_wire, "Sent");
        assert_eq!(
            plan_of(&plans, "Gesendete Objekte").target_wire,
            "Gesendete Objekte"
        );
        // Alone for its role, a foreign name still lands in the target's special folder.
        assert_eq!(plan_of(&plans, "Corbeille").target_wire, "Trash");
    }

    #[test]
    fn special_use_beats_names_and_languages_map_to_the_target_role() {
        let src = tree(
            &[
                ("INBOX", "/", &[]),
                ("Gesendete Objekte", "/", &[]),
                ("Papierkorb", "/", &["\\Trash"]),
                ("Stuff", "/", &[]),
            ],
            "",
        );
        let dst = tree(
            &[
                ("INBOX", "/", &[]),
                ("Sent Items", "/", &["\\Sent"]),
                ("Deleted Items", "/", &[]),
                ("stuff", "/", &[]),
            ],
            "",
        );
        let plans = plan_folders(&src, &dst, &FolderRules::default());
        assert_eq!(
            plan_of(&plans, "Gesendete Objekte").target_wire,
            "Sent Items"
        );
        assert_eq!(plan_of(&plans, "Papierkorb").target_wire, "Deleted Items");
        // Case-insensitive targets: reuse the existing folder.
        assert_eq!(plan_of(&plans, "Stuff").target_wire, "stuff");
        assert!(plan_of(&plans, "Stuff").target_exists);
    }

    #[test]
    fn noselect_containers_and_gmail_all_mail_are_not_copied() {
        let src = tree(
            &[
                ("INBOX", "/", &[]),
                ("[Gmail]", "/", &["\\Noselect"]),
                ("[Gmail]/All Mail", "/", &["\\All"]),
                ("[Gmail]/Sent Mail", "/", &["\\Sent"]),
            ],
            "",
        );
        let dst = tree(&[("INBOX", ".", &[]), ("Sent", ".", &["\\Sent"])], "");
        let plans = plan_folders(&src, &dst, &FolderRules::default());
        let names: Vec<String> = plans.iter().map(|p| p.source.display()).collect();
        assert_eq!(names, vec!["INBOX", "[Gmail]/Sent Mail"]);
        assert_eq!(plans[1].target_wire, "Sent");
    }

    #[test]
    fn a_label_style_source_plans_all_mail_into_the_archive_folder() {
        let src = tree(
            &[
                ("INBOX", "/", &[]),
                ("[Gmail]", "/", &["\\Noselect"]),
                ("[Gmail]/All Mail", "/", &["\\All"]),
                ("Work", "/", &[]),
            ],
            "",
        );
        let dst = tree(&[("INBOX", ".", &[]), ("Archiv", ".", &["\\Archive"])], "");
        let rules = FolderRules {
            all_mail_target: Some("Old/Archive".into()),
            ..FolderRules::default()
        };
        let plans = plan_folders(&src, &dst, &rules);
        let all = plan_of(&plans, "[Gmail]/All Mail");
        assert_eq!(all.target_wire, "Old.Archive");
        assert_eq!(all.reason, "archived-only mail (label policy)");
        assert_eq!(plans.len(), 3);
    }

    #[test]
    fn overrides_and_filters_apply_to_subfolders() {
        let src = tree(
            &[
                ("INBOX", "/", &[]),
                ("Old", "/", &[]),
                ("Old/2019", "/", &[]),
                ("Spam", "/", &[]),
                ("Oldies", "/", &[]),
            ],
            "",
        );
        let dst = tree(&[("INBOX", ".", &[])], "");
        let rules = FolderRules {
            map: FolderRules::parse_map(&["Old=Archive/Old".to_string()]).unwrap(),
            exclude: vec!["spam".into()],
            ..FolderRules::default()
        };
        let plans = plan_folders(&src, &dst, &rules);
        assert_eq!(plan_of(&plans, "Old").target_wire, "Archive.Old");
        assert_eq!(plan_of(&plans, "Old/2019").target_wire, "Archive.Old.2019");
        assert_eq!(plan_of(&plans, "Oldies").target_wire, "Oldies");
        assert!(plans.iter().all(|p| p.source.display() != "Spam"));
        let only = FolderRules {
            include: vec!["Old*".into()],
            ..FolderRules::default()
        };
        assert_eq!(plan_folders(&src, &dst, &only).len(), 3);
        assert!(FolderRules::parse_map(&["nonsense".into()]).is_err());
    }

    #[test]
    fn maps_on_non_ascii_folder_names_do_not_panic() {
        // `Ab` is two bytes; in `Aé` the second byte is inside `é`.
        let src = tree(
            &[
                ("INBOX", "/", &[]),
                ("Aé", "/", &[]),
                ("Aé/x", "/", &[]),
                ("Ä", "/", &[]),
            ],
            "",
        );
        let dst = tree(&[("INBOX", "/", &[])], "");
        let rules = FolderRules {
            map: FolderRules::parse_map(&["Ab=X".to_string(), "Aé=Y".to_string()]).unwrap(),
            ..FolderRules::default()
        };
        let plans = plan_folders(&src, &dst, &rules);
        assert_eq!(plan_of(&plans, "Aé").target_display(), "Y");
        assert_eq!(plan_of(&plans, "Aé/x").target_display(), "Y/x");
        assert_eq!(plan_of(&plans, "Ä").target_display(), "Ä");
        let rules = FolderRules {
            map: FolderRules::parse_map(&["A=Z".to_string()]).unwrap(),
            ..FolderRules::default()
        };
        let plans = plan_folders(&src, &dst, &rules);
        assert_eq!(plan_of(&plans, "Aé").target_display(), "Aé");
        assert!(!glob_match("é*", "e"));
        assert!(glob_match("?x", "éx"));
    }

    #[test]
    fn raw_8bit_source_names_get_a_modified_utf7_target_and_their_own_map_key() {
        let entries = [
            (&b"INBOX"[..], "."),
            (b"INBOX.Caf\xe9", "."),
            (b"INBOX.Caf\xc3\xa9", "."),
            (b"INBOX.Bad&Jjo", "."),
            (b"INBOX.Caf&AOk-", "."),
        ];
        let src = FolderTree::from_list(
            entries
                .iter()
                .map(|(n, d)| (WireName::new(*n), d.chars().next(), Vec::new()))
                .collect(),
            "INBOX.",
            HashSet::new(),
        );
        // A target that lists a raw name too: it is never reused as a wire name.
        let dst = FolderTree::from_list(
            vec![
                (WireName::from("INBOX"), Some('/'), Vec::new()),
                (WireName::new(&b"Caf\xe9"[..]), Some('/'), Vec::new()),
            ],
            "",
            HashSet::new(),
        );
        let plans = plan_folders(&src, &dst, &FolderRules::default());
        let by_wire = |w: &[u8]| {
            plans
                .iter()
                .find(|p| p.source.wire.as_bytes() == w)
                .unwrap()
        };
        let latin1 = by_wire(b"INBOX.Caf\xe9");
        assert_eq!(latin1.source.display(), "Café");
        assert_eq!(latin1.target_wire, "Caf&AOk-");
        assert!(!latin1.target_exists);
        assert_eq!(latin1.source.map_key(), "Café (raw name INBOX.Caf\\xe9)");
        let utf8 = by_wire(b"INBOX.Caf\xc3\xa9");
        assert_eq!(utf8.source.display(), "Café");
        assert_eq!(utf8.source.map_key(), "Café (raw name INBOX.Caf\\xc3\\xa9)");
        let standard = by_wire(b"INBOX.Caf&AOk-");
        assert_eq!(standard.source.map_key(), "Café");
        assert_eq!(standard.source.renamed_note("Café", "Caf&AOk-"), None);
        let bad = by_wire(b"INBOX.Bad&Jjo");
        assert_eq!(bad.source.display(), "Bad&Jjo");
        assert_eq!(bad.target_wire, "Bad&-Jjo");
        let note = latin1
            .source
            .renamed_note(&latin1.target_display(), &latin1.target_wire)
            .unwrap();
        assert!(
            note.starts_with("INBOX.Caf\\xe9 -> Café (Caf&AOk- on the target)"),
            "{note}"
        );
        assert!(note.contains("Latin-1"), "{note}");
    }

    #[test]
    fn any_bytes_as_a_name_are_planned_without_a_panic() {
        // Every byte, alone and around `&`, `.` and the prefix; and pseudo-random strings.
        let mut names: Vec<Vec<u8>> = (0..=255u8)
            .flat_map(|b| {
                [
                    vec![b],
                    vec![b'&', b],
                    b"INBOX.".iter().copied().chain([b, b'.', b]).collect(),
                ]
            })
            .collect();
        let mut x: u32 = 7;
        for len in 0..200 {
            names.push(
                (0..len % 23)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        (x >> 16) as u8
                    })
                    .collect(),
            );
        }
        let entries = names
            .iter()
            .map(|n| (WireName::new(n.clone()), Some('.'), Vec::new()))
            .collect();
        let src = FolderTree::from_list(entries, "INBOX.", HashSet::new());
        let dst = tree(&[("INBOX", "/", &[])], "");
        for plan in plan_folders(&src, &dst, &FolderRules::default()) {
            let _ = plan.source.map_key();
            let _ = plan.source.legacy_map_key();
            let _ = plan
                .source
                .renamed_note(&plan.target_display(), &plan.target_wire);
            assert!(plan.target_wire.is_ascii(), "{:?}", plan.target_wire);
            assert!(
                utf7::decode(&plan.target_wire).is_some(),
                "target names are modified UTF-7: {:?}",
                plan.target_wire
            );
        }
    }

    #[test]
    fn globs_match_like_shells() {
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("Arch?ve/*", "archive/2020"));
        assert!(!glob_match("a*d", "abc"));
    }
}
