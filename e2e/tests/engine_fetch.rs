//! Getting the exact bytes and the full listing from a source that refuses or garbles
//! (issue 15): a refused `BODY.PEEK[]` must not lead to decoded bytes (`BINARY.PEEK[]`)
//! stored as the message, and a listing split over responses or missing an item must
//! not drop messages silently. The fault proxy sits in front of a real Dovecot source.

mod engine_common;

use engine_common::*;
use mailferry_e2e::dovecot::DovecotOptions;
use mailferry_e2e::proxy::Faults;
use std::sync::atomic::Ordering;

/// A message with a base64 attachment (and a quoted-printable text part): what
/// `BINARY[]` hands back decoded, about a quarter smaller.
fn with_attachment(i: u32) -> Vec<u8> {
    let payload: Vec<u8> = (0..3000u32).map(|n| (n * 7 + i) as u8).collect();
    let b64 = base64_lines(&payload);
    format!(
        "From: a{i}@example.org\r\nTo: alice@example.org\r\nSubject: attachment {i}\r\nMessage-ID: <att.{i}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe, see the file =3D attached.\r\n--b{i}\r\nContent-Type: application/octet-stream; name=\"f{i}.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"f{i}.bin\"\r\n\r\n{b64}--b{i}--\r\n"
    )
    .into_bytes()
}

fn plain(i: u32) -> Vec<u8> {
    format!(
        "From: p{i}@example.org\r\nTo: alice@example.org\r\nSubject: plain {i}\r\nMessage-ID: <plain.{i}@example.org>\r\n\r\nJust text {i}.\r\n"
    )
    .into_bytes()
}

fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    text.as_bytes()
        .chunks(76)
        .map(|l| format!("{}\r\n", String::from_utf8_lossy(l)))
        .collect()
}

/// Two Dovecots, the source's INBOX holding `attachments` messages with encoded parts
/// and `plains` plain ones, with assorted flags.
async fn pair_with(
    attachments: u32,
    plains: u32,
) -> (Pair, u64, std::collections::BTreeMap<String, Vec<Seen>>) {
    let pair = Pair::start(DovecotOptions::default(), DovecotOptions::default()).unwrap();
    let account = pair.source_account();
    let flag_sets: [&[&str]; 3] = [&[], &["\\Seen"], &["\\Flagged", "Work"]];
    for i in 0..attachments.max(plains) {
        let flags: Vec<String> = flag_sets[i as usize % 3]
            .iter()
            .map(|f| f.to_string())
            .collect();
        if i < attachments {
            append_one(&account, "INBOX", &with_attachment(i), &flags)
                .await
                .unwrap();
        }
        if i < plains {
            append_one(&account, "INBOX", &plain(i), &flags)
                .await
                .unwrap();
        }
    }
    let before = snapshot(&account).await.unwrap();
    (pair, u64::from(attachments + plains), before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_peek_forms_still_give_exact_copies_of_encoded_attachments() {
    let (pair, seeded, before) = pair_with(4, 2).await;
    let (proxy, run) = pair
        .copy_through(
            Side::Source,
            Faults {
                bad_fetch_forms: vec!["BODY.PEEK[]".into(), "RFC822.PEEK".into()],
                ..Faults::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert!(
        proxy.stats().bad_answers.load(Ordering::SeqCst) >= 2,
        "the faults happened"
    );
    let forms: Vec<String> = proxy
        .stats()
        .commands_logged()
        .iter()
        .filter(|c| c.fetches_body)
        .filter_map(|c| c.items.clone())
        .collect();
    assert_eq!(run.code, Some(0), "{run:?}\nforms asked: {forms:?}");
    assert_eq!(run.copied_skipped_failed(), (seeded, 0, 0));
    // Byte for byte (the headers still say base64: so must the body), flags and dates;
    // and no \Seen left on the source by BODY[].
    pair.assert_exact_copy(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_binary_answers_are_never_stored_as_the_message() {
    let (pair, seeded, before) = pair_with(3, 3).await;
    let (proxy, run) = pair
        .copy_through(
            Side::Source,
            Faults {
                // Every form but BINARY.PEEK[] ("RFC822)" is the bare RFC822 item).
                bad_fetch_forms: vec![
                    "BODY.PEEK[]".into(),
                    "RFC822.PEEK".into(),
                    "BODY[]".into(),
                    "RFC822)".into(),
                ],
                ..Faults::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert!(
        proxy.stats().commands_logged().iter().any(|c| c
            .items
            .as_deref()
            .is_some_and(|i| i.contains("BINARY.PEEK[]"))),
        "BINARY.PEEK[] was tried"
    );
    // The plain messages come back whole from BINARY (nothing to decode) and are copied;
    // the three with encoded parts are skipped with the reason, not stored decoded.
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (seeded - 3, 3, 0), "{run:?}");
    for s in run.json["skipped_messages"].as_array().unwrap() {
        let reason = s["reason"].as_str().unwrap();
        assert!(reason.contains("decoded"), "{s}");
        assert!(
            s["subject"]
                .as_str()
                .unwrap_or("")
                .starts_with("attachment"),
            "{s}"
        );
    }
    pair.assert_exact_copy_but_skipped(&before, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_incomplete_listings_are_merged_fetched_again_or_reported() {
    let (pair, seeded, before) = pair_with(0, 8).await;
    let (proxy, run) = pair
        .copy_through(
            Side::Source,
            Faults {
                // Every listing response in two pieces (flags first, without the UID);
                // UID 3 once without its date (asked again, it comes whole); UID 5
                // never with its date.
                split_listing: true,
                strip_listing_date: vec![(3, 1), (5, u64::MAX)],
                ..Faults::default()
            },
            &[],
        )
        .await
        .unwrap();
    let listings = proxy
        .stats()
        .commands_logged()
        .iter()
        .filter(|c| {
            c.items
                .as_deref()
                .is_some_and(|i| i.contains("RFC822.SIZE"))
        })
        .count();
    assert!(
        listings >= 2,
        "the incomplete ones were asked for again ({listings} listings)"
    );
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!(run.copied_skipped_failed(), (seeded - 1, 1, 0), "{run:?}");
    let skipped = &run.json["skipped_messages"][0];
    assert_eq!(skipped["uid"].as_u64(), Some(5), "{skipped}");
    assert!(
        skipped["reason"].as_str().unwrap().contains("INTERNALDATE"),
        "{skipped}"
    );
    // The others byte for byte, with their flags (which came in the other piece).
    pair.assert_exact_copy_but_skipped(&before, &run).await;
}
