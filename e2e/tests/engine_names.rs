//! Mailbox names from old servers (UW-IMAP, old Courier and Cyrus setups, Exchange 2003):
//! raw 8-bit bytes (Latin-1, or UTF-8 without modified UTF-7) and invalid modified UTF-7.
//!
//! No server of the kit lists such a name: Dovecot lists a raw-named maildir folder under
//! a modified UTF-7 name (or escapes it) and refuses 8-bit names in CREATE and SELECT, and
//! Courier lists a UTF-8 maildir name encoded (and ends the connection on LIST over a
//! Latin-1 one). So the fault proxy shows a real Dovecot's folders as an old server would
//! list them, and gives Dovecot its own name back only when a command names exactly
//! those bytes: the hostile input is just the names.

mod engine_common;

use engine_common::*;
use mailferry_e2e::courier::Courier;
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::imap_client::connect;
use mailferry_e2e::proxy::{AliasForm, Faults, MailboxAlias};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;

/// (Dovecot's name, the bytes the engine is shown, how, messages, the target's name).
const FOLDERS: [(&str, &[u8], AliasForm, usize, &str); 4] = [
    ("Caf&AOk-", b"Caf\xe9", AliasForm::Quoted, 3, "Caf&AOk-"),
    ("Caf&AOg-", b"Caf\xe8", AliasForm::Atom, 2, "Caf&AOg-"),
    (
        "Gr&APwA3w-e",
        b"Gr\xc3\xbc\xc3\x9fe",
        AliasForm::Literal,
        2,
        "Gr&APwA3w-e",
    ),
    ("Bad&-Jjo", b"Bad&Jjo", AliasForm::Atom, 1, "Bad&-Jjo"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_8bit_and_invalid_utf7_names_are_opened_by_their_bytes_and_copied_once() {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let source = pair.source_account();
    let mut total = 0;
    for (name, _, _, messages, _) in FOLDERS {
        let mut conn = connect(&source).await.unwrap();
        conn.create(name).await.unwrap();
        conn.logout().await;
        for i in 0..messages {
            let body = format!(
                "Subject: {name} {i}\r\nMessage-ID: <{i}.{name}@old>\r\n\r\nin {name}, {i}\r\n"
            );
            append_one(&source, name, body.as_bytes(), &[])
                .await
                .unwrap();
            total += 1;
        }
    }
    let before = snapshot(&source).await.unwrap();
    let faults = Faults {
        aliases: FOLDERS
            .iter()
            .map(|(server, client, form, _, _)| MailboxAlias {
                server: server.as_bytes().to_vec(),
                client: client.to_vec(),
                form: *form,
            })
            .collect(),
        ..Faults::default()
    };

    // One proxy for every run: the job is the pair of accounts, ports included.
    let proxy = pair.proxy(Side::Source, faults).await.unwrap();
    let run = pair
        .migrate_through(Side::Source, &proxy, &[])
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (total as u64, 0, 0), "{run:?}");
    assert!(
        proxy.stats().aliased_commands.load(Ordering::SeqCst) >= FOLDERS.len() as u64,
        "the engine named every folder by the bytes it was shown"
    );
    // Every folder's messages, exactly, under the modified UTF-7 name of the bytes read
    // as UTF-8 (Grüße), else Latin-1 (Café, Cafè).
    pair.assert_exact_copy(&before).await;
    let target = snapshot(&pair.target_account()).await.unwrap();
    for (_, _, _, messages, target_name) in FOLDERS {
        assert_eq!(
            target.get(target_name).map(Vec::len),
            Some(messages),
            "{target:?}"
        );
    }
    // The report says what each became and why.
    let renamed: Vec<String> = run.json["renamed"]
        .as_array()
        .unwrap_or_else(|| panic!("no renamed in {}", run.json))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(renamed.len(), 4, "{renamed:?}");
    for expected in [
        "Caf\\xe9 -> Café (Caf&AOk- on the target): the source name is raw 8-bit bytes, neither modified UTF-7 nor UTF-8; read as Latin-1",
        "Caf\\xe8 -> Cafè (Caf&AOg- on the target)",
        "Gr\\xc3\\xbc\\xc3\\x9fe -> Grüße (Gr&APwA3w-e on the target): the source name is raw 8-bit UTF-8",
        "Bad&Jjo -> Bad&Jjo (Bad&-Jjo on the target): the source name is not valid modified UTF-7",
    ] {
        assert!(
            renamed.iter().any(|r| r.starts_with(expected)),
            "{expected:?} not in {renamed:?}"
        );
    }

    // A re-run finds every folder in the map again: nothing copied twice.
    let again = pair
        .migrate_through(Side::Source, &proxy, &[])
        .await
        .unwrap();
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.copied_skipped_failed(), (0, 0, 0), "{again:?}");
    assert_eq!(again.count("already_present"), total as u64, "{again:?}");
    pair.assert_exact_copy(&before).await;

    // Rows an earlier version kept under the display form of a name that is UTF-8 but
    // not modified UTF-7 (`Grüße`, `Bad&Jjo`) are taken over by the exact-bytes key.
    for (legacy, key) in [
        ("Grüße", "Grüße (raw name%"),
        ("Bad&Jjo", "Bad&Jjo (raw name%"),
    ] {
        for table in ["uid_map", "folder_map"] {
            sql(
                &pair,
                &format!("UPDATE {table} SET source_folder = '{legacy}' WHERE source_folder LIKE '{key}'"),
            );
        }
    }
    let count = |folder: &str| {
        sql(
            &pair,
            &format!("SELECT COUNT(*) FROM uid_map WHERE source_folder LIKE '{folder}'"),
        )
    };
    assert_eq!(count("Grüße"), "2");
    let adopted = pair
        .migrate_through(Side::Source, &proxy, &[])
        .await
        .unwrap();
    assert_eq!(adopted.copied_skipped_failed(), (0, 0, 0), "{adopted:?}");
    assert_eq!((count("Grüße"), count("Bad&Jjo")), ("0".into(), "0".into()));
    assert_eq!(count("Grüße (raw name%"), "2");
    assert_eq!(count("Bad&Jjo (raw name%"), "1");
    pair.assert_exact_copy(&before).await;

    // The dry run's listing shows the names decoded, with their bytes, and never panics.
    let dry = pair
        .migrate_through(Side::Source, &proxy, &["--dry-run"])
        .await
        .unwrap();
    assert_eq!(dry.code, Some(0), "{dry:?}");
    assert_eq!(
        dry.json["renamed"].as_array().map(Vec::len),
        Some(4),
        "{dry:?}"
    );
}

/// Runs `query` on the UID map's database (SQLite file or the suite's PostgreSQL).
fn sql(pair: &Pair, query: &str) -> String {
    if let Some(pg) = &pair.postgres {
        let database = pg.url.rsplit('/').next().unwrap_or_default();
        let database = database.split('?').next().unwrap_or_default();
        return pg.server.psql(database, query).unwrap().trim().to_owned();
    }
    let out = std::process::Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(pair.dir.path().join("map.db"))
        .arg(query)
        .output()
        .expect("sqlite3 runs (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "sqlite3 {query:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One plain-text exchange with a server: every line it sent, as bytes.
fn talk(port: u16, user: &str, password: &str, commands: &[&[u8]]) -> Vec<u8> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut out = Vec::new();
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).unwrap();
    let mut all = vec![format!("LOGIN {user} {password}").into_bytes()];
    all.extend(commands.iter().map(|c| c.to_vec()));
    for (i, command) in all.iter().enumerate() {
        let tag = format!("t{i} ");
        let mut bytes = tag.clone().into_bytes();
        bytes.extend_from_slice(command);
        bytes.extend_from_slice(b"\r\n");
        writer.write_all(&bytes).unwrap();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                return out;
            }
            out.extend_from_slice(&line);
            if line.starts_with(tag.as_bytes()) {
                break;
            }
        }
    }
    out
}

/// Why the target always gets a modified UTF-7 name: what a real Dovecot does with raw
/// 8-bit names, on disk and in commands.
#[test]
fn dovecot_never_lists_raw_names_and_refuses_them_in_create() {
    let dovecot = Dovecot::start(DovecotOptions::default()).unwrap();
    dovecot.add_user("alice", "pw").unwrap();
    let _ = talk(dovecot.imap_port(), "alice", "pw", &[b"LIST \"\" \"*\""]);
    let maildir = dovecot.maildir_of("alice");
    for name in [&b".Caf\xe9"[..], b".Gr\xc3\xbc\xc3\x9fe", b".Bad&Jjo"] {
        let dir = maildir.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name));
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
    }
    let out = talk(
        dovecot.imap_port(),
        "alice",
        "pw",
        &[
            b"LIST \"\" \"*\"",
            b"CREATE {4+}\r\nNe\xe9u",
            b"SELECT {4+}\r\nCaf\xe9",
        ],
    );
    let text = out.escape_ascii().to_string();
    assert!(out.is_ascii(), "no 8-bit byte in any reply: {text}");
    assert!(
        text.contains("Gr&APwA3w-e"),
        "UTF-8 on disk, listed encoded: {text}"
    );
    assert!(
        text.contains("Bad&-Jjo"),
        "invalid modified UTF-7 on disk, escaped: {text}"
    );
    assert!(
        text.contains("t2 NO Mailbox name is not valid mUTF-7"),
        "8-bit CREATE refused: {text}"
    );
    assert!(
        text.contains("t3 NO Mailbox name is not valid mUTF-7"),
        "8-bit SELECT refused: {text}"
    );
}

/// Courier lists a UTF-8 maildir name encoded, refuses 8-bit in commands, and never sends
/// a raw 8-bit name (over a Latin-1 one it ends the connection on LIST).
#[test]
fn courier_never_lists_raw_names() {
    for (dir, listed) in [
        (&b".Caf\xc3\xa9"[..], Some("INBOX.Caf&AOk-")),
        (b".Caf\xe9", None),
    ] {
        let courier = Courier::start(&[("carol", "pw")]).unwrap();
        let path = courier
            .maildir_of("carol")
            .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(dir));
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(path.join(sub)).unwrap();
        }
        let chown = std::process::Command::new("chown")
            .arg("-R")
            .arg("65534:65534")
            .arg(&path)
            .status()
            .unwrap();
        assert!(chown.success());
        let out = talk(
            courier.imap_port(),
            "carol",
            "pw",
            &[b"LIST \"\" \"*\"", b"CREATE \"INBOX.Ne\xe9u\""],
        );
        let text = out.escape_ascii().to_string();
        assert!(out.is_ascii(), "no 8-bit byte in any reply: {text}");
        if let Some(name) = listed {
            assert!(text.contains(name), "{text}");
            assert!(text.contains("t2 BAD"), "8-bit CREATE refused: {text}");
        }
    }
}
