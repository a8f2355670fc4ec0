//! Gmail's labels, with real Dovecots: a source whose `[Gmail]/All Mail` (a `virtual`
//! mailbox, SPECIAL-USE \All) shows every message once, those of the label folders and
//! the mail "archived without a label" that no listed folder holds, as on Gmail. Each
//! message is stored once in a hidden namespace (`Hidden/All`, not listed) that All Mail
//! shows, and again in the folder of each label. (A virtual mailbox over the label
//! folders themselves would show a message with three labels three times, unlike Gmail.)
//! And a target that says X-GM-EXT-1 (through the proxy): labels by UID COPY.

mod engine_common;

use engine_common::*;
use mailferry_e2e::compare::{compare, snapshot as full_snapshot, FolderMap, Snapshot};
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::imap_client::{connect, AppendItem};
use mailferry_e2e::proxy::Faults;
use std::collections::BTreeSet;

const ALL_MAIL: &str = "[Gmail]/All Mail";

/// One message of the seeded account: the folders (labels) it is in, its flags, and what
/// the default policy must make of it (the one folder it goes to, the keywords it gets).
struct Mail {
    subject: &'static str,
    folders: &'static [&'static str],
    flags: &'static [&'static str],
    home: &'static str,
    keywords: &'static [&'static str],
}

const MAILS: &[Mail] = &[
    // An exact duplicate inside INBOX: two messages, both must arrive.
    Mail {
        subject: "inbox one",
        folders: &["INBOX", "INBOX"],
        flags: &["\\Seen"],
        home: "INBOX",
        keywords: &[],
    },
    Mail {
        subject: "inbox two",
        folders: &["INBOX"],
        flags: &[],
        home: "INBOX",
        keywords: &[],
    },
    Mail {
        subject: "inbox three",
        folders: &["INBOX"],
        flags: &["\\Flagged", "$Forwarded"],
        home: "INBOX",
        keywords: &[],
    },
    Mail {
        subject: "three labels",
        folders: &["Work", "INBOX", "Travel"],
        flags: &["\\Seen", "\\Answered"],
        home: "INBOX",
        keywords: &["Travel", "Work"],
    },
    Mail {
        subject: "work and sent",
        folders: &["Sent", "Work"],
        flags: &["\\Seen"],
        home: "Work",
        keywords: &["Sent"],
    },
    Mail {
        subject: "travel only",
        folders: &["Travel"],
        flags: &[],
        home: "Travel",
        keywords: &[],
    },
    Mail {
        subject: "sent only",
        folders: &["Sent"],
        flags: &["\\Seen"],
        home: "Sent",
        keywords: &[],
    },
    // Same size and INTERNALDATE, other headers: two messages, not one.
    Mail {
        subject: "twin A",
        folders: &["Work"],
        flags: &[],
        home: "Work",
        keywords: &[],
    },
    Mail {
        subject: "twin B",
        folders: &["Travel"],
        flags: &[],
        home: "Travel",
        keywords: &[],
    },
    Mail {
        subject: "archived one",
        folders: &["Archived"],
        flags: &["\\Seen"],
        home: "Archive",
        keywords: &[],
    },
    Mail {
        subject: "archived two",
        folders: &["Archived"],
        flags: &[],
        home: "Archive",
        keywords: &[],
    },
    Mail {
        subject: "in the trash",
        folders: &["Trash"],
        flags: &["\\Seen"],
        home: "Trash",
        keywords: &[],
    },
];

fn gmail_like() -> DovecotOptions {
    DovecotOptions {
        separator: '/',
        virtual_all_mail: vec!["Hidden/All".into()],
        ..DovecotOptions::default()
    }
}

fn body_of(i: usize, m: &Mail) -> Vec<u8> {
    format!(
        "From: Sender <s{i}@example.org>\r\nTo: alice@example.org\r\nSubject: {}\r\nMessage-ID: <{i}@gmail.example>\r\n\r\nThe body of {}.\r\n",
        m.subject, m.subject
    )
    .into_bytes()
}

fn date_of(i: usize, m: &Mail) -> String {
    if m.subject.starts_with("twin") {
        return "07-Jul-2021 07:07:07 +0000".into();
    }
    format!("{:02}-Mar-2020 10:{:02}:00 +0100", i + 1, i)
}

/// Seeds the Gmail-like source: each message into every folder of its labels, with the
/// same bytes, flags and date (as Gmail shows one message in several folders).
async fn seed(pair: &Pair) -> usize {
    let mut conn = connect(&pair.source_account()).await.unwrap();
    for f in ["Work", "Travel", "Sent", "Trash", "Hidden/All"] {
        conn.create(f).await.unwrap();
    }
    let data: Vec<(Vec<u8>, Vec<String>, String)> = MAILS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                body_of(i, m),
                m.flags.iter().map(|f| f.to_string()).collect(),
                date_of(i, m),
            )
        })
        .collect();
    let mut items = Vec::new();
    for (m, (bytes, flags, date)) in MAILS.iter().zip(&data) {
        // A folder named twice holds the message twice: two messages, both in All Mail.
        let times = m
            .folders
            .iter()
            .map(|f| m.folders.iter().filter(|g| *g == f).count())
            .max()
            .unwrap_or(1);
        let store = std::iter::repeat_n("Hidden/All", if m.home == "Trash" { 0 } else { times });
        let labels = m.folders.iter().copied().filter(|f| *f != "Archived");
        for folder in store.chain(labels) {
            items.push(AppendItem {
                mailbox: folder,
                flags,
                internal_date: Some(date),
                bytes,
            });
        }
    }
    for r in conn.append_pipelined(&items).await.unwrap() {
        r.unwrap();
    }
    conn.logout().await;
    assert_eq!(
        body_of(7, &MAILS[7]).len(),
        body_of(8, &MAILS[8]).len(),
        "the twins have one size"
    );
    // Distinct messages: the INBOX duplicate counts twice.
    MAILS
        .iter()
        .map(|m| if m.subject == "inbox one" { 2 } else { 1 })
        .sum()
}

/// The source's messages by subject, read where each is (All Mail holds every one not in
/// the trash, the hidden archived ones included).
fn source_messages(source: &Snapshot, m: &Mail) -> Vec<mailferry_e2e::compare::MessageInfo> {
    let folder = if m.home == "Trash" { "Trash" } else { ALL_MAIL };
    let found: Vec<_> = source.folders[folder]
        .messages
        .iter()
        .filter(|x| x.subject == m.subject)
        .cloned()
        .collect();
    assert!(
        !found.is_empty(),
        "{} not in {folder} on the source",
        m.subject
    );
    found
}

fn empty_folder(name: &str) -> mailferry_e2e::compare::FolderSnapshot {
    mailferry_e2e::compare::FolderSnapshot {
        server_name: name.into(),
        attributes: Vec::new(),
        messages: Vec::new(),
    }
}

/// What the target must hold under the default policy.
fn expected_default(source: &Snapshot) -> Snapshot {
    let mut out = Snapshot::default();
    for name in ["INBOX", "Work", "Travel", "Sent", "Archive", "Trash"] {
        out.folders.insert(name.into(), empty_folder(name));
    }
    for m in MAILS {
        for mut info in source_messages(source, m) {
            info.flags.extend(m.keywords.iter().map(|k| k.to_string()));
            out.folders.get_mut(m.home).unwrap().messages.push(info);
        }
    }
    out
}

/// What the target must hold under "labels as folders": every label folder as it is,
/// Trash as it is, and from All Mail only the archived-only messages, in Archive.
fn expected_labels_as_folders(source: &Snapshot) -> Snapshot {
    let mut out = source.clone();
    let all = out.folders.remove(ALL_MAIL).unwrap();
    let mut archive = empty_folder("Archive");
    archive.messages = all
        .messages
        .into_iter()
        .filter(|x| x.subject.starts_with("archived"))
        .collect();
    out.folders.insert("Archive".into(), archive);
    out
}

fn totals(snap: &Snapshot) -> (usize, usize) {
    let all = snap.folders.values().flat_map(|f| &f.messages);
    (all.clone().count(), all.map(|m| m.size).sum())
}

fn assert_no_differences(expected: &Snapshot, target: &Snapshot) {
    let diffs = compare(expected, target, &FolderMap::identity());
    assert!(diffs.is_empty(), "differences: {diffs:#?}");
    let names: BTreeSet<&String> = target.folders.keys().collect();
    let wanted: BTreeSet<&String> = expected.folders.keys().collect();
    assert_eq!(names, wanted, "target folders");
}

fn policy_notes(run: &Run) -> Vec<String> {
    run.json["label_policy"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_policy_copies_each_message_once_and_keeps_archived_only_mail() {
    let pair = Pair::start(gmail_like(), DovecotOptions::default()).unwrap();
    let distinct = seed(&pair).await;
    let source = full_snapshot(&pair.source_account()).await.unwrap();
    // The kit really is Gmail-like: All Mail repeats the labels and holds the hidden
    // archived mail, which no listed folder has; the hidden namespace is not listed.
    assert_eq!(source.folders[ALL_MAIL].messages.len(), distinct - 1);
    assert!(source.folders.keys().all(|f| !f.starts_with("Hidden")));
    let listed: usize = source.folders.values().map(|f| f.messages.len()).sum();
    assert!(
        listed > 2 * distinct - 4,
        "labels repeat messages: {listed}"
    );

    // A dry run lists and decides, and changes nothing.
    let run = pair.migrate_direct(&["--dry-run"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), 0);
    assert!(
        policy_notes(&run)
            .iter()
            .any(|n| n.contains("2 archived-only to Archive")),
        "{}",
        run.json
    );
    let untouched = full_snapshot(&pair.target_account()).await.unwrap();
    assert_eq!(totals(&untouched).0, 0, "a dry run stores nothing");

    let started = std::time::Instant::now();
    let run = pair.migrate_direct(&[]).await.unwrap();
    eprintln!("first run: {:?}", started.elapsed());
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), distinct as u64, "{}", run.json);
    let notes = policy_notes(&run);
    eprintln!("label policy: {notes:#?}");
    assert!(
        notes.iter().any(|n| {
            n
            == "[Gmail]/All Mail: 10 messages already in label folders, 2 archived-only to Archive"
        }),
        "{notes:?}"
    );

    let target = full_snapshot(&pair.target_account()).await.unwrap();
    let expected = expected_default(&source);
    assert_no_differences(&expected, &target);
    // Nothing stored twice: count and bytes on the target are those of the distinct mail.
    assert_eq!(totals(&target), totals(&expected));
    assert_eq!(totals(&target).0, distinct);
    assert_eq!(run.count("bytes_copied"), totals(&expected).1 as u64);

    // A re-run copies nothing.
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), 0, "{}", run.json);
    assert_no_differences(
        &expected,
        &full_snapshot(&pair.target_account()).await.unwrap(),
    );

    // Labels change: "inbox two" gets the Travel label; "three labels" loses INBOX (where
    // its copy went) and gains the new label "Reisen 2024". The next run copies nothing;
    // the new labels arrive as keywords on the existing copies.
    let mut conn = connect(&pair.source_account()).await.unwrap();
    conn.create("Reisen 2024").await.unwrap();
    let mut items_data = Vec::new();
    for (subject, folder) in [("inbox two", "Travel"), ("three labels", "Reisen 2024")] {
        let (i, m) = MAILS
            .iter()
            .enumerate()
            .find(|(_, m)| m.subject == subject)
            .unwrap();
        let flags: Vec<String> = m.flags.iter().map(|f| f.to_string()).collect();
        items_data.push((folder, body_of(i, m), date_of(i, m), flags));
    }
    let items: Vec<AppendItem<'_>> = items_data
        .iter()
        .map(|(folder, bytes, date, flags)| AppendItem {
            mailbox: folder,
            flags,
            internal_date: Some(date),
            bytes,
        })
        .collect();
    for r in conn.append_pipelined(&items).await.unwrap() {
        r.unwrap();
    }
    conn.select("INBOX").await.unwrap();
    let uid = source.folders["INBOX"]
        .messages
        .iter()
        .find(|m| m.subject == "three labels")
        .unwrap()
        .uid;
    conn.command_ok(&format!("UID STORE {uid} +FLAGS (\\Deleted)"))
        .await
        .unwrap();
    conn.command_ok("EXPUNGE").await.unwrap();
    conn.logout().await;
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.count("copied"), 0, "{}", run.json);
    eprintln!("after label changes: {:#?}", policy_notes(&run));
    let target = full_snapshot(&pair.target_account()).await.unwrap();
    assert_eq!(totals(&target).0, distinct, "still one copy per message");
    let flags_of = |subject: &str| {
        target.folders["INBOX"]
            .messages
            .iter()
            .find(|m| m.subject == subject)
            .unwrap()
            .flags
            .clone()
    };
    assert!(
        flags_of("inbox two").contains("Travel"),
        "{:?}",
        flags_of("inbox two")
    );
    let three = flags_of("three labels");
    for k in ["Reisen_2024", "Travel", "Work", "\\Seen", "\\Answered"] {
        assert!(three.contains(k), "{k} on {three:?}");
    }
    // And a run after that has nothing left to do.
    let run = pair.migrate_direct(&[]).await.unwrap();
    assert_eq!(
        (run.count("copied"), run.count("flags_updated")),
        (0, 0),
        "{}",
        run.json
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_as_folders_gives_one_copy_per_label_folder() {
    let pair = Pair::start(gmail_like(), DovecotOptions::default()).unwrap();
    seed(&pair).await;
    let source = full_snapshot(&pair.source_account()).await.unwrap();
    let run = pair.migrate_direct(&["--labels-as-folders"]).await.unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    let expected = expected_labels_as_folders(&source);
    assert_eq!(run.count("copied"), totals(&expected).0 as u64);
    assert_no_differences(
        &expected,
        &full_snapshot(&pair.target_account()).await.unwrap(),
    );
    let run = pair.migrate_direct(&["--labels-as-folders"]).await.unwrap();
    assert_eq!(run.count("copied"), 0, "{}", run.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gmail_target_gets_one_append_per_message_and_copies_for_further_labels() {
    let target = DovecotOptions {
        mail_log: true,
        ..DovecotOptions::default()
    };
    let pair = Pair::start(gmail_like(), target).unwrap();
    let distinct = seed(&pair).await;
    let source = full_snapshot(&pair.source_account()).await.unwrap();
    let proxy = pair
        .proxy(
            Side::Target,
            Faults {
                add_capabilities: vec!["X-GM-EXT-1".into()],
                ..Faults::default()
            },
        )
        .await
        .unwrap();
    let run = pair
        .migrate_to(proxy.port(), &["--labels-as-folders"])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    // "three labels" has two further labels, "work and sent" one.
    assert_eq!(run.count("copied"), distinct as u64, "{}", run.json);
    assert_eq!(run.count("label_copies"), 3, "{}", run.json);
    let log = pair.target.log_text();
    let saves: Vec<&str> = log.lines().filter(|l| l.contains(": save: ")).collect();
    let copies: Vec<&str> = log.lines().filter(|l| l.contains(": copy ")).collect();
    eprintln!("{}", copies.join("\n"));
    assert_eq!(saves.len(), distinct, "one APPEND per message:\n{log}");
    assert_eq!(copies.len(), 3, "a COPY per further label:\n{log}");
    for m in MAILS
        .iter()
        .filter(|m| m.subject.starts_with("three") || m.subject.starts_with("work and"))
    {
        let appended = saves
            .iter()
            .filter(|l| {
                l.contains(&format!(
                    "<{}@",
                    MAILS.iter().position(|x| x.subject == m.subject).unwrap()
                ))
            })
            .count();
        assert_eq!(appended, 1, "{} appended once", m.subject);
    }
    // On Dovecot a COPY is a second message, so the folders look as under "labels as folders".
    let expected = expected_labels_as_folders(&source);
    assert_no_differences(
        &expected,
        &full_snapshot(&pair.target_account()).await.unwrap(),
    );
    // A re-run: nothing appended, nothing copied again.
    let run = pair
        .migrate_to(proxy.port(), &["--labels-as-folders"])
        .await
        .unwrap();
    assert_eq!(
        (run.count("copied"), run.count("label_copies")),
        (0, 0),
        "{}",
        run.json
    );
}
