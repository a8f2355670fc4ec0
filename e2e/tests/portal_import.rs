//! The admin's CSV import, black-box over HTTP against real Dovecot servers: every bad row
//! explained and nothing imported; then a good file of 50 users becomes 50 finished jobs.

use mailferry_e2e::api::{contains_secret, Api};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::portal::{route_config, Portal};
use mailferry_shared::{ImportPreview, ImportRequest, ImportResult, JobPage, JobStatus};
use std::time::Duration;

const ADMIN_PW: &str = "admin-password-1";

fn user_password(i: usize) -> String {
    format!("pw,\"{i}\"-%x")
}

fn quoted(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

#[tokio::test]
async fn bad_rows_are_all_listed_and_fifty_good_users_become_fifty_jobs() {
    let source = Dovecot::start(DovecotOptions::default()).unwrap();
    let target = Dovecot::start(DovecotOptions::default()).unwrap();
    for i in 1..=50 {
        source
            .add_user(&format!("user{i:02}"), &user_password(i))
            .unwrap();
        target
            .add_user(&format!("user{i:02}"), &user_password(i))
            .unwrap();
    }
    let portal = Portal::start_with_config(&route_config(&source, &target, ""))
        .await
        .unwrap();
    portal.add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin = Api::new(&portal.url(""));
    admin.staff_sign_in("ada", ADMIN_PW).await.unwrap();

    // Every kind of bad row, each on its own line.
    let bad = "\u{feff}source_user,source_password,target_user,target_password,route\r\n\
               user01,secret,user01,secret,default\r\n\
               user02,,user02,secret,default\r\n\
               user01,secret,user03,secret,default\r\n\
               user04,secret,user04,secret,nowhere\r\n\
               user 05,secret,user05,secret,default\r\n\
               user06,secret,user06\r\n";
    let request = ImportRequest {
        csv: bad.into(),
        import_valid_rows: false,
    };
    let preview: ImportPreview = admin
        .post_json("/api/admin/import/preview", &request)
        .await
        .unwrap();
    let lines: Vec<u64> = preview.errors.iter().map(|e| e.line).collect();
    for line in [3, 4, 5, 6, 7] {
        assert!(
            lines.contains(&line),
            "line {line} not reported: {:#?}",
            preview.errors
        );
    }
    let reason_of = |line: u64| {
        preview
            .errors
            .iter()
            .filter(|e| e.line == line)
            .map(|e| format!("{:?} {}", e.column, e.reason))
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert!(reason_of(3).contains("source_password"), "{}", reason_of(3));
    assert!(reason_of(5).contains("nowhere"), "{}", reason_of(5));
    assert!(
        reason_of(5).contains("default"),
        "known routes are named: {}",
        reason_of(5)
    );
    // Nothing is imported from a file with errors unless asked.
    let result: ImportResult = admin
        .post_json("/api/admin/import", &request)
        .await
        .unwrap();
    assert!(result.batch.is_none());
    let page: JobPage = admin.get_json("/api/helpdesk/jobs").await.unwrap();
    assert_eq!(page.total, 0);
    assert!(
        !admin.everything_seen().contains("secret,"),
        "passwords are never echoed"
    );

    // A good file: 50 users with passwords that need quoting.
    let mut good = String::from("Source User,Source Password,Target User,Target Password\n");
    for i in 1..=50 {
        let pw = quoted(&user_password(i));
        good.push_str(&format!("user{i:02},{pw},user{i:02},{pw}\n"));
    }
    let result: ImportResult = admin
        .post_json(
            "/api/admin/import",
            &ImportRequest {
                csv: good,
                import_valid_rows: false,
            },
        )
        .await
        .unwrap();
    assert!(
        result.preview.errors.is_empty(),
        "{:#?}",
        result.preview.errors
    );
    let batch = result.batch.expect("a batch");
    assert_eq!(batch.jobs, 50);
    let view = admin
        .wait_for_batch(&batch.id, 50, Duration::from_secs(240))
        .await
        .unwrap();
    assert_eq!(
        view.by_status
            .iter()
            .map(|c| (c.status, c.jobs))
            .collect::<Vec<_>>(),
        [(JobStatus::Synced, 50)],
        "{view:?}"
    );
    let page: JobPage = admin
        .get_json(&format!(
            "/api/helpdesk/jobs?batch={}&per_page=100",
            batch.id
        ))
        .await
        .unwrap();
    assert_eq!(page.total, 50);
    let everything = admin.everything_seen() + &portal.log_text();
    for i in 1..=50 {
        assert!(
            !contains_secret(&everything, &user_password(i)),
            "a password leaked"
        );
    }
}
