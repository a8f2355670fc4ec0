//! Private Dovecot 2.3 instances for tests.
//!
//! Each [`Dovecot`] owns a temporary directory holding its configuration, passwd files,
//! certificates, runtime sockets, state, log and maildirs, and listens only on two free
//! 127.0.0.1 ports: plain IMAP (which also offers STARTTLS) and IMAPS. It runs as
//! `dovecot -F` in its own process group; dropping the value (also while a test panics)
//! stops the whole group and removes the directory, so no process or file is left behind.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::imap_client::{Account, Security};
use crate::ports::free_port;
use crate::tls::{generate_pki, TestPki};

/// How a private Dovecot is set up. `Default` gives the common case: `.` separator, no
/// namespace prefix, no quota, plaintext login allowed on the plain port, no master user.
#[derive(Debug, Clone)]
pub struct DovecotOptions {
    /// Hierarchy separator of the personal namespace: `.` or `/`. Migrations between
    /// servers with different separators must rewrite folder names.
    pub separator: char,
    /// Personal namespace prefix, e.g. `INBOX.` (Courier/Cyrus style); empty for none.
    /// When set it must end with the separator.
    pub prefix: String,
    /// Per-user storage quota in bytes: APPENDs beyond it fail with `NO [OVERQUOTA]`.
    pub quota_bytes: Option<u64>,
    /// Largest message accepted by APPEND, in bytes (`quota_max_mail_size`). Dovecot 2.3
    /// does not advertise APPENDLIMIT; an APPEND over it fails with a tagged NO.
    pub max_mail_size: Option<u64>,
    /// Allow LOGIN/AUTHENTICATE on the plain (non-TLS) port.
    pub plaintext_auth: bool,
    /// A master user `(name, password)`: `user*name` LOGIN and SASL PLAIN with an
    /// authorization identity log in as `user` without knowing the user's password.
    pub master_user: Option<(String, String)>,
    /// Folders (without prefix) that carry a SPECIAL-USE attribute, e.g. `("Sent", "\\Sent")`.
    /// They are not created automatically.
    pub special_use: Vec<(String, String)>,
    /// Bearer-only logins: SASL XOAUTH2 and OAUTHBEARER, each token checked by RFC 7662
    /// introspection at an OpenID provider (see [`crate::oidc`]). Such a server has no
    /// password database: LOGIN and PLAIN are refused, and [`Dovecot::add_user`] is not
    /// needed: any name the provider vouches for gets a mailbox (static userdb).
    pub oauth2: Option<DovecotOAuth2>,
    /// A Gmail-like account: the `virtual` plugin shows `[Gmail]<sep>All Mail` (SPECIAL-USE
    /// `\All`) over these folders (names as the user sees them, with the separator), so one
    /// message appears in its folder and again in All Mail. A hidden namespace `Hidden<sep>`
    /// (not listed, not in NAMESPACE) is there for mail "archived without a label": put
    /// e.g. `Hidden<sep>Archived` in the list and its messages show only in All Mail.
    /// Empty: no virtual mailbox.
    pub virtual_all_mail: Vec<String>,
    /// Log every message saved (APPEND) and copied (COPY) with the `mail_log` plugin, as
    /// `save: box=..., uid=...` and `copy: box=..., uid=...` lines in [`Dovecot::log_text`].
    pub mail_log: bool,
}

/// How a bearer-only Dovecot validates tokens (its `passdb oauth2` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DovecotOAuth2 {
    /// The introspection endpoint with the introspecting client's credentials in it,
    /// e.g. `http://dovecot:SECRET@127.0.0.1:PORT/token/introspection` (POSTed `token=`).
    pub introspection_url: String,
    /// The introspection answer's field that must equal the login name (`sub`).
    pub username_attribute: String,
    /// Dovecot's `scope` setting (space-separated), when set.
    pub scope: Option<String>,
}

impl DovecotOAuth2 {
    /// Introspection at `introspection_url`, the user named by `sub`, no scope setting.
    pub fn new(introspection_url: impl Into<String>) -> DovecotOAuth2 {
        DovecotOAuth2 {
            introspection_url: introspection_url.into(),
            username_attribute: "sub".into(),
            scope: None,
        }
    }
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            separator: '.',
            prefix: String::new(),
            quota_bytes: None,
            max_mail_size: None,
            plaintext_auth: true,
            master_user: None,
            special_use: [
                ("Sent", "\\Sent"),
                ("Drafts", "\\Drafts"),
                ("Trash", "\\Trash"),
                ("Junk", "\\Junk"),
            ]
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect(),
            oauth2: None,
            virtual_all_mail: Vec::new(),
            mail_log: false,
        }
    }
}

/// A running private Dovecot. Stopped, and its directory removed, on drop.
#[derive(Debug)]
pub struct Dovecot {
    child: Option<Child>,
    pgid: i32,
    imap_port: u16,
    imaps_port: u16,
    pki: TestPki,
    options: DovecotOptions,
    passwd_lock: Mutex<()>,
    // Declared last: dropped after the processes are gone.
    dir: tempfile::TempDir,
}

/// The unprivileged identity mail processes run as.
struct MailIdentity {
    user: String,
    group: String,
    uid: u32,
    gid: u32,
    root: bool,
}

fn mail_identity() -> Result<MailIdentity> {
    // SAFETY: geteuid/getegid/getpwuid/getgrgid are called with valid arguments; the
    // returned pointers are read immediately, before any other call could reuse them.
    unsafe {
        let euid = libc::geteuid();
        if euid == 0 {
            return Ok(MailIdentity {
                user: "nobody".into(),
                group: "nogroup".into(),
                uid: 65534,
                gid: 65534,
                root: true,
            });
        }
        let egid = libc::getegid();
        let pw = libc::getpwuid(euid);
        if pw.is_null() {
            bail!("no passwd entry for uid {euid}");
        }
        let user = std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned();
        let gr = libc::getgrgid(egid);
        if gr.is_null() {
            bail!("no group entry for gid {egid}");
        }
        let group = std::ffi::CStr::from_ptr((*gr).gr_name)
            .to_string_lossy()
            .into_owned();
        Ok(MailIdentity {
            user,
            group,
            uid: euid,
            gid: egid,
            root: false,
        })
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", path.display()))
}

impl Dovecot {
    /// Starts a Dovecot with `options` and waits until its plain port sends a greeting.
    ///
    /// Blocking (a second or so): call it before or outside async work. On failure the
    /// error carries the tail of Dovecot's log.
    pub fn start(options: DovecotOptions) -> Result<Dovecot> {
        if options.separator != '.' && options.separator != '/' {
            bail!("separator must be '.' or '/'");
        }
        if !options.prefix.is_empty() && !options.prefix.ends_with(options.separator) {
            bail!("namespace prefix must end with the separator");
        }
        let id = mail_identity()?;
        let dir = tempfile::Builder::new()
            .prefix("mailferry-dovecot-")
            .tempdir()
            .context("creating the Dovecot directory")?;
        let root = dir.path().to_path_buf();
        // Mail processes (unprivileged) must traverse the directory to reach the maildirs.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
        for sub in ["run", "state", "tls"] {
            std::fs::create_dir(root.join(sub))?;
        }
        std::fs::set_permissions(root.join("tls"), std::fs::Permissions::from_mode(0o700))?;
        let mail = root.join("mail");
        std::fs::create_dir(&mail)?;
        chown(&mail, id.uid, id.gid)?;
        let pki = generate_pki(&root.join("tls"))?;
        std::fs::create_dir(root.join("users"))?;
        std::fs::set_permissions(root.join("users"), std::fs::Permissions::from_mode(0o755))?;
        if let Some((name, password)) = &options.master_user {
            check_passwd_field(name)?;
            check_passwd_field(password)?;
            std::fs::write(
                root.join("master-users"),
                format!("{name}:{{PLAIN}}{password}\n"),
            )?;
            std::fs::set_permissions(
                root.join("master-users"),
                std::fs::Permissions::from_mode(0o644),
            )?;
        }

        if let Some(oauth2) = &options.oauth2 {
            std::fs::write(root.join("oauth2.conf"), render_oauth2(oauth2)?)?;
            std::fs::set_permissions(
                root.join("oauth2.conf"),
                std::fs::Permissions::from_mode(0o644),
            )?;
        }

        if !options.virtual_all_mail.is_empty() {
            // One definition for every user: the patterns name each user's own folders.
            let all = root.join("virtual").join("All Mail");
            std::fs::create_dir_all(&all)?;
            let mut rule = String::new();
            for folder in &options.virtual_all_mail {
                if folder.contains(['\n', '\r']) {
                    bail!("virtual_all_mail folder names may not contain a newline");
                }
                let _ = writeln!(rule, "{folder}");
            }
            rule.push_str("  all\n");
            std::fs::write(all.join("dovecot-virtual"), rule)?;
            for dir in [root.join("virtual"), all.clone()] {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
            }
            std::fs::set_permissions(
                all.join("dovecot-virtual"),
                std::fs::Permissions::from_mode(0o644),
            )?;
        }

        let imap_port = free_port();
        let imaps_port = free_port();
        let conf = render_config(&root, &pki, &id, &options, imap_port, imaps_port);
        let conf_path = root.join("dovecot.conf");
        std::fs::write(&conf_path, conf)?;
        let log_path = root.join("dovecot.log");
        std::fs::write(&log_path, "")?;
        let stdout = std::fs::File::create(root.join("dovecot.stdout"))?;
        let stderr = stdout.try_clone()?;

        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .context("running `dovecot` (is dovecot-imapd installed?)")?;
        let pgid = i32::try_from(child.id()).context("pid out of range")?;
        let mut dovecot = Dovecot {
            child: Some(child),
            pgid,
            imap_port,
            imaps_port,
            pki,
            options,
            passwd_lock: Mutex::new(()),
            dir,
        };
        dovecot.wait_for_greeting()?;
        Ok(dovecot)
    }

    fn wait_for_greeting(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "dovecot exited at start ({status}).\n{}",
                        self.diagnostics()
                    );
                }
            }
            if let Ok(stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, self.imap_port)) {
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "dovecot did not greet on 127.0.0.1:{} within 20 s.\n{}",
                    self.imap_port,
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn diagnostics(&self) -> String {
        let mut out = String::new();
        let stdout =
            std::fs::read_to_string(self.dir.path().join("dovecot.stdout")).unwrap_or_default();
        if !stdout.trim().is_empty() {
            let _ = writeln!(out, "dovecot output:\n{}", tail(&stdout, 40));
        }
        let _ = write!(out, "dovecot log (tail):\n{}", tail(&self.log_text(), 40));
        out
    }

    /// Adds (or replaces) a user with a PLAIN password. Works before and after start.
    /// (A replaced password may take a second to be seen: Dovecot re-checks a file at most
    /// once a second.)
    pub fn add_user(&self, name: &str, password: &str) -> Result<()> {
        check_passwd_field(name)?;
        if name.contains('/') || name.starts_with('.') {
            bail!("test user names may not contain '/' or start with '.'");
        }
        check_passwd_field(password)?;
        let _guard = self
            .passwd_lock
            .lock()
            .map_err(|_| anyhow!("passwd lock poisoned"))?;
        // One passwd-file per user: Dovecot re-checks a passwd-file at most once a second,
        // so a user added to a shared file just after another login stayed unknown. A new
        // user's own file is read on its first lookup.
        let users = self.dir.path().join("users");
        let tmp = users.join(format!(".{name}.new"));
        std::fs::write(&tmp, format!("{name}:{{PLAIN}}{password}\n"))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        // Replace atomically so the auth process never reads half a file.
        std::fs::rename(&tmp, users.join(name))?;
        Ok(())
    }

    /// Port of plain IMAP on 127.0.0.1 (STARTTLS is offered there too).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// Port of IMAPS (TLS from the first byte) on 127.0.0.1.
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// PEM file of the CA that signed the server certificate; clients trust it to verify.
    pub fn ca_pem_path(&self) -> &Path {
        &self.pki.ca_cert
    }

    /// The options the server was started with.
    pub fn options(&self) -> &DovecotOptions {
        &self.options
    }

    /// Everything Dovecot has logged so far (logins are logged as `imap-login: Info: Login: user=<..>`).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Number of successful IMAP logins logged so far (any user).
    pub fn login_count(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains("imap-login: ") && l.contains(" Login: user=<"))
            .count()
    }

    /// The Maildir of `user` on disk (exists after the user's first login).
    pub fn maildir_of(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user).join("Maildir")
    }

    /// Connection details for `user` on the plain port (no TLS).
    pub fn account(&self, user: &str, password: &str) -> Account {
        Account::plain_local(self.imap_port, user, password)
    }

    /// Connection details for `user` on the IMAPS port, trusting this server's CA.
    pub fn account_tls(&self, user: &str, password: &str) -> Account {
        Account {
            host: "localhost".into(),
            port: self.imaps_port,
            security: Security::Tls {
                ca_pem: self.pki.ca_cert.clone(),
            },
            user: user.into(),
            password: password.into(),
        }
    }

    /// Stops Dovecot now (also done on drop). Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child's process group.
        unsafe {
            libc::kill(-self.pgid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (children orphaned by the master) is killed.
        // SAFETY: as above; kill(-pgid, 0) only probes.
        unsafe {
            let deadline = Instant::now() + Duration::from_secs(2);
            while libc::kill(-self.pgid, 0) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            libc::kill(-self.pgid, libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Process group id of the Dovecot processes (its master's pid).
    pub fn process_group(&self) -> i32 {
        self.pgid
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check_passwd_field(s: &str) -> Result<()> {
    if s.is_empty() || s.contains([':', '\n', '\r']) {
        bail!("user names and passwords must be non-empty and contain no ':' or newline");
    }
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn render_config(
    root: &Path,
    pki: &TestPki,
    id: &MailIdentity,
    o: &DovecotOptions,
    imap_port: u16,
    imaps_port: u16,
) -> String {
    let r = root.display();
    let mut c = String::new();
    let _ = writeln!(
        c,
        r#"# Private Dovecot for Mailferry's tests (generated).
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
instance_name = mailferry-test-{imap_port}
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes
auth_verbose = yes
auth_failure_delay = 0
auth_mechanisms = {mechanisms}
disable_plaintext_auth = {no_plain}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
mail_fsync = never
mail_location = maildir:~/Maildir
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}"#,
        no_plain = if o.plaintext_auth { "no" } else { "yes" },
        mechanisms = if o.oauth2.is_some() {
            "xoauth2 oauthbearer"
        } else {
            "plain login"
        },
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
        uid = id.uid,
        gid = id.gid,
    );
    if !id.root {
        let _ = writeln!(
            c,
            "default_internal_user = {u}\ndefault_internal_group = {g}\ndefault_login_user = {u}",
            u = id.user,
            g = id.group
        );
    }
    let _ = writeln!(
        c,
        r#"
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"#
    );
    if o.oauth2.is_some() {
        // Bearer tokens only: no password passdb at all. Without the per-IP auth penalty
        // (the docs' way to turn it off): a refused token would otherwise delay every
        // later login from 127.0.0.1 by 2 to 15 seconds.
        let _ = writeln!(
            c,
            r#"service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {r}/oauth2.conf
}}"#
        );
    } else if o.master_user.is_some() {
        let _ = writeln!(
            c,
            r#"auth_master_user_separator = *
passdb {{
  driver = passwd-file
  master = yes
  args = scheme=PLAIN {r}/master-users
  result_success = continue
}}"#
        );
    }
    if o.oauth2.is_none() {
        let _ = writeln!(
            c,
            r#"passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/users/%u
}}"#
        );
    }
    let _ = writeln!(
        c,
        r#"userdb {{
  driver = static
  args = uid={uid} gid={gid} home={r}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = {sep}
  prefix = {prefix}"#,
        uid = id.uid,
        gid = id.gid,
        sep = o.separator,
        prefix = o.prefix,
    );
    for (name, attr) in &o.special_use {
        let _ = writeln!(
            c,
            "  mailbox \"{name}\" {{\n    special_use = {attr}\n  }}",
            name = name.replace('"', "")
        );
    }
    let _ = writeln!(c, "}}");
    if !o.virtual_all_mail.is_empty() {
        // Gmail-like: All Mail is a virtual mailbox over the label folders and the hidden
        // "archived" place; its indexes are per user, its definition shared.
        let _ = writeln!(
            c,
            r#"mail_plugins = $mail_plugins virtual
namespace hidden {{
  prefix = Hidden{sep}
  separator = {sep}
  location = maildir:~/Hidden
  hidden = yes
  list = no
}}
namespace gmail {{
  prefix = [Gmail]{sep}
  separator = {sep}
  location = virtual:{r}/virtual:INDEX=~/virtual-index
  subscriptions = no
  mailbox "All Mail" {{
    special_use = \All
  }}
}}"#,
            sep = o.separator,
        );
    }
    if o.mail_log {
        let _ = writeln!(
            c,
            "mail_plugins = $mail_plugins notify mail_log\nplugin {{\n  mail_log_events = save copy\n  mail_log_fields = uid box msgid size\n}}"
        );
    }
    if o.quota_bytes.is_some() || o.max_mail_size.is_some() {
        let _ = writeln!(
            c,
            "mail_plugins = $mail_plugins quota\nprotocol imap {{\n  mail_plugins = $mail_plugins imap_quota\n}}\nplugin {{\n  quota = maildir:User quota"
        );
        if let Some(bytes) = o.quota_bytes {
            let _ = writeln!(c, "  quota_rule = *:storage={bytes}B");
        }
        if let Some(bytes) = o.max_mail_size {
            let _ = writeln!(c, "  quota_max_mail_size = {bytes}B");
        }
        let _ = writeln!(c, "}}");
    }
    c
}

fn render_oauth2(o: &DovecotOAuth2) -> Result<String> {
    for (what, value) in [
        ("introspection_url", o.introspection_url.as_str()),
        ("username_attribute", o.username_attribute.as_str()),
        ("scope", o.scope.as_deref().unwrap_or("")),
    ] {
        if value.contains(['\n', '\r']) {
            bail!("oauth2 {what} may not contain a newline");
        }
    }
    let mut c = format!(
        "introspection_mode = post\nintrospection_url = {}\nusername_attribute = {}\n\
         active_attribute = active\nactive_value = true\n",
        o.introspection_url, o.username_attribute
    );
    if let Some(scope) = &o.scope {
        let _ = writeln!(c, "scope = {scope}");
    }
    Ok(c)
}
