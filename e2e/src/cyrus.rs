//! Private Cyrus IMAP 3.6 instances for tests, run from the unpacked Debian packages
//! (see [`crate::unpacked`]).
//!
//! Each [`Cyrus`] owns a temporary directory with its `imapd.conf`, `cyrus.conf`, a
//! private sasldb (users and PLAIN passwords), its config directory and mail partition,
//! and listens on one free 127.0.0.1 port (plain IMAP, LOGIN allowed). `master` runs in
//! its own process group and is stopped on drop. Cyrus logs only to syslog, so there is
//! no log to show when it fails. Layout as a new Cyrus 3.6 user sees it (its defaults
//! `unixhierarchysep` and `altnamespace` on): `/` separator, personal folders beside INBOX
//! (NAMESPACE `(("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))`); a user's
//! INBOX is created at the first login (`autocreate_quota: 0`, no quota).

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::imap_client::Account;
use crate::ports::free_port;
use crate::unpacked::{give_to_nobody, library_path, stop_group, tool, wait_for_greeting};

/// A running private Cyrus. Stopped, and its directory removed, on drop.
#[derive(Debug)]
pub struct Cyrus {
    child: Option<Child>,
    pgid: i32,
    port: u16,
    dir: tempfile::TempDir,
}

impl Cyrus {
    /// Starts a Cyrus and waits for its greeting (about a second).
    pub fn start() -> Result<Cyrus> {
        let master = tool("usr/lib/cyrus/bin/master")?;
        let imapd = tool("usr/lib/cyrus/bin/imapd")?;
        let ctl = tool("usr/lib/cyrus/bin/ctl_cyrusdb")?;
        let dir = tempfile::Builder::new()
            .prefix("mailferry-cyrus-")
            .tempdir()?;
        let root = dir.path();
        for sub in ["conf", "partition", "run", "socket"] {
            std::fs::create_dir(root.join(sub))?;
        }
        let port = free_port();
        let r = root.display();
        // SAFETY: geteuid has no preconditions.
        let root_user = unsafe { libc::geteuid() } == 0;
        let cyrus_user = if root_user {
            "nobody".to_string()
        } else {
            std::env::var("USER").context("USER is not set")?
        };
        let mut conf = String::new();
        let _ = write!(
            conf,
            "configdirectory: {r}/conf\n\
             partition-default: {r}/partition\n\
             defaultpartition: default\n\
             cyrus_user: {cyrus_user}\n\
             admins: cyrusadmin\n\
             servername: localhost\n\
             sasl_pwcheck_method: auxprop\n\
             sasl_auxprop_plugin: sasldb\n\
             sasl_sasldb_path: {r}/sasldb2\n\
             sasl_mech_list: PLAIN LOGIN\n\
             allowplaintext: yes\n\
             autocreate_quota: 0\n\
             lmtpsocket: {r}/socket/lmtp\n\
             idlesocket: {r}/socket/idle\n\
             notifysocket: {r}/socket/notify\n\
             syslog_prefix: mailferry-cyrus-{port}\n"
        );
        std::fs::write(root.join("imapd.conf"), conf)?;
        let cyrus_conf = format!(
            "START {{\n  recover cmd=\"{ctl} -r -C {r}/imapd.conf\"\n}}\n\
             SERVICES {{\n  imap cmd=\"{imapd} -C {r}/imapd.conf\" listen=\"127.0.0.1:{port}\" prefork=0\n}}\n",
            ctl = ctl.display(),
            imapd = imapd.display(),
        );
        std::fs::write(root.join("cyrus.conf"), cyrus_conf)?;
        // An empty sasldb, so that the first user is added to a file Cyrus can read.
        let cyrus = Cyrus {
            child: None,
            pgid: 0,
            port,
            dir,
        };
        cyrus.add_user("cyrusadmin", "cyrusadmin-secret")?;
        give_to_nobody(cyrus.dir.path())?;
        let child = Command::new(master)
            .arg("-C")
            .arg(cyrus.dir.path().join("imapd.conf"))
            .arg("-M")
            .arg(cyrus.dir.path().join("cyrus.conf"))
            .arg("-p")
            .arg(cyrus.dir.path().join("run/master.pid"))
            .arg("-D")
            .env("LD_LIBRARY_PATH", library_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("running Cyrus master")?;
        let mut cyrus = cyrus;
        cyrus.pgid = i32::try_from(child.id())?;
        cyrus.child = Some(child);
        let child = cyrus.child.as_mut().expect("just set");
        wait_for_greeting(child, port, "cyrus master")
            .context("Cyrus logs only to syslog; try it by hand with the same imapd.conf")?;
        Ok(cyrus)
    }

    /// Adds (or replaces) a user with a password in the private sasldb. Works before and
    /// after start; the INBOX is created at the user's first login.
    pub fn add_user(&self, name: &str, password: &str) -> Result<()> {
        if name.is_empty() || password.contains(['\n', '\r']) || name.contains(['.', '/', ' ']) {
            bail!("test user names may not contain '.', '/' or spaces");
        }
        let db = self.dir.path().join("sasldb2");
        let mut child = Command::new("saslpasswd2")
            .arg("-f")
            .arg(&db)
            .arg("-p")
            .arg("-c")
            .arg("-u")
            .arg("localhost")
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("running saslpasswd2 (package sasl2-bin; run scripts/install-test-deps.sh)")?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(password.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "saslpasswd2 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        give_to_nobody(&db)?;
        Ok(())
    }

    /// Port of plain IMAP on 127.0.0.1.
    pub fn imap_port(&self) -> u16 {
        self.port
    }

    /// Connection details for `user` on the plain port.
    pub fn account(&self, user: &str, password: &str) -> Account {
        Account::plain_local(self.port, user, password)
    }

    /// Stops Cyrus now (also done on drop). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child, self.pgid);
        }
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        self.stop();
    }
}
