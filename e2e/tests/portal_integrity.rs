//! Integrity of the portal's job store, black-box against the real binary: one mailbox
//! pair is one job however its names are spelled (also when imported at the same
//! moment), and a key file others can read stops
//! the server with the fix in its message.

use mailferry_e2e::api::Api;
use mailferry_e2e::portal::Portal;
use mailferry_e2e::ports::free_port;
use mailferry_shared::{ImportResult, JobPage};

const ADMIN_PW: &str = "admin-password-1";

/// Two routes to servers nobody listens on (the jobs fail to connect, which is not what
/// these tests look at): `default` compares user names without regard to case, `exact`
/// goes to servers that tell `Bob` from `bob`.
fn config() -> String {
    let port = free_port();
    format!(
        "workers = 1\n\
         [servers.old]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nallow_plaintext = true\n\
         [servers.new]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nallow_plaintext = true\n\
         [servers.old_exact]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nallow_plaintext = true\nuser_names = \"case_sensitive\"\n\
         [servers.new_exact]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nallow_plaintext = true\nuser_names = \"case_sensitive\"\n\
         [routes.default]\nsource = \"old\"\ntarget = \"new\"\n\
         [routes.exact]\nsource = \"old_exact\"\ntarget = \"new_exact\"\n"
    )
}

async fn import(admin: &Api, rows: &str) -> ImportResult {
    let csv = format!("source_user,source_password,target_user,target_password,route\n{rows}");
    let result: ImportResult = admin.import_csv(&csv).await.unwrap();
    assert!(
        result.preview.errors.is_empty(),
        "{:#?}",
        result.preview.errors
    );
    assert!(result.batch.is_some(), "nothing was imported");
    result
}

async fn jobs_of(admin: &Api, route: &str) -> JobPage {
    admin
        .get_json(&format!("/api/helpdesk/jobs?route={route}&per_page=100"))
        .await
        .unwrap()
}

#[tokio::test]
async fn imports_spelling_a_user_differently_share_one_job() {
    let portal = Portal::start_with_config(&config()).await.unwrap();
    portal.add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin = Api::new(&portal.url(""));
    admin.staff_sign_in("ada", ADMIN_PW).await.unwrap();

    // The same person three times: composed and decomposed ü, any case, stray spaces.
    import(
        &admin,
        "J\u{00FC}rgen@Old.example,pw-1,Juergen@New.example,pw-1,default\n",
    )
    .await;
    import(
        &admin,
        " ju\u{0308}rgen@old.example ,pw-2,JUERGEN@new.example,pw-2,default\n",
    )
    .await;
    import(
        &admin,
        "J\u{00DC}RGEN@OLD.EXAMPLE,pw-3,juergen@NEW.example,pw-3,default\n",
    )
    .await;
    let page = jobs_of(&admin, "default").await;
    assert_eq!(page.total, 1, "{:#?}", page.jobs);
    assert_eq!(page.jobs[0].source_user, "j\u{00FC}rgen@old.example");
    assert_eq!(page.jobs[0].target_user, "juergen@new.example");

    // On servers that compare names exactly, Bob and bob are two mailboxes (imported
    // apart: one file refuses names that differ only in case, whatever the server)...
    import(&admin, "Bob,pw,Bob,pw,exact\n").await;
    import(&admin, "bob,pw,bob,pw,exact\n").await;
    // ...but a composed and a decomposed ö are still one.
    import(&admin, "J\u{00F6}rg,pw,J\u{00F6}rg,pw,exact\n").await;
    import(&admin, "Jo\u{0308}rg,pw,Jo\u{0308}rg,pw,exact\n").await;
    let page = jobs_of(&admin, "exact").await;
    let mut users: Vec<String> = page.jobs.iter().map(|j| j.source_user.clone()).collect();
    users.sort();
    assert_eq!(users, ["Bob", "J\u{00F6}rg", "bob"]);
}

#[tokio::test]
async fn simultaneous_imports_of_one_user_make_one_job() {
    let portal = Portal::start_with_config(&config()).await.unwrap();
    portal.add_staff("ada", ADMIN_PW, "admin").unwrap();
    let admin = Api::new(&portal.url(""));
    admin.staff_sign_in("ada", ADMIN_PW).await.unwrap();
    let spellings = [
        "Carol@Old.example,pw,Carol@New.example,pw,default\n",
        "carol@old.example,pw,carol@new.example,pw,default\n",
        " CAROL@OLD.EXAMPLE,pw,CAROL@NEW.EXAMPLE ,pw,default\n",
        "carol@OLD.example,pw,Carol@new.EXAMPLE,pw,default\n",
    ];
    let imports = (0..8).map(|i| import(&admin, spellings[i % spellings.len()]));
    let results = futures::future::join_all(imports).await;
    assert_eq!(results.len(), 8);
    let page = jobs_of(&admin, "default").await;
    assert_eq!(page.total, 1, "{:#?}", page.jobs);
}

#[cfg(unix)]
#[tokio::test]
async fn a_key_file_others_can_read_stops_the_server_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let mut portal = Portal::start().await.unwrap();
    let key = portal.data_dir().join("secret.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a new key file is private");
    portal.kill();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = match portal.restart().await {
        Ok(()) => panic!("the server started with a key file anyone can read"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );
    // Fixed as the message says, the server starts again.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    portal.restart().await.unwrap();
}
