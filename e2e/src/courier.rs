//! Private Courier-IMAP 5 instances for tests, run from the unpacked Debian packages
//! (see [`crate::unpacked`]). Needs root (as CI and the dev machines run).
//!
//! Courier's authentication library has its paths compiled in: the authdaemon socket under
//! `/run/courier`, its configuration and user database under `/etc/courier`, its modules
//! in `/usr/lib/courier-authlib`. Each [`Courier`] therefore runs in its own mount
//! namespace (`unshare -m`), where its temporary directory is bind-mounted on those three
//! paths: its own `authdaemond` (module `authuserdb`, a private userdb made with Courier's
//! `makedatprog`, passwords as SHA-512 crypt) and `couriertcpd` → `imaplogin` → `imapd`
//! on one free 127.0.0.1 port. The host only gets the three empty mount points. Courier's
//! IDLE watcher (gamin's `gam_server`) is started from the tools directory. Everything in
//! that namespace is killed on drop. Layout: `.` separator, personal namespace `INBOX.`,
//! keywords on (`IMAP_KEYWORDS=1`), Maildir storage.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::imap_client::Account;
use crate::ports::free_port;
use crate::unpacked::{give_to_nobody, library_path, stop_group, tool, wait_for_greeting};

const MOUNT_POINTS: [&str; 3] = ["/etc/courier", "/run/courier", "/usr/lib/courier-authlib"];

/// A running private Courier-IMAP. Stopped, and its directory removed, on drop.
#[derive(Debug)]
pub struct Courier {
    child: Option<Child>,
    pgid: i32,
    namespace: Option<PathBuf>,
    port: u16,
    users: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Courier {
    /// Starts a Courier with `users` (name, password) and waits for its greeting.
    pub fn start(users: &[(&str, &str)]) -> Result<Courier> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("the Courier kit needs root (a mount namespace for its compiled-in paths)");
        }
        let tcpd = tool("usr/sbin/couriertcpd")?;
        let login = tool("usr/lib/courier/courier/imaplogin")?;
        let imapd = tool("usr/bin/imapd")?;
        let authdaemond = tool("usr/lib/courier/courier-authlib/authdaemond")?;
        let gam_server = tool("usr/libexec/gam_server")
            .or_else(|_| -> Result<PathBuf> { Ok(PathBuf::from("/usr/libexec/gam_server")) })?;
        let modules = crate::unpacked::tools_root().join("usr/lib/courier-authlib");
        for p in MOUNT_POINTS {
            std::fs::create_dir_all(p).with_context(|| format!("creating mount point {p}"))?;
        }
        let dir = tempfile::Builder::new()
            .prefix("mailferry-courier-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
        for sub in ["etc", "run/authdaemon", "home"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        std::fs::set_permissions(root.join("home"), std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(
            root.join("etc/authdaemonrc"),
            "authmodulelist=\"authuserdb\"\ndaemons=1\nauthdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\n",
        )?;
        let mut courier = Courier {
            child: None,
            pgid: 0,
            namespace: None,
            port: free_port(),
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            dir,
        };
        courier.write_userdb()?;
        let script = format!(
            "#!/bin/sh\nset -e\n\
             mount --bind {r}/etc /etc/courier\n\
             mount --bind {r}/run /run/courier\n\
             mount --bind {modules} /usr/lib/courier-authlib\n\
             {authdaemond} &\n\
             for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do\n\
             [ -S /run/courier/authdaemon/socket ] && break; sleep 0.1; done\n\
             exec {tcpd} -address=127.0.0.1 -nodnslookup -noidentlookup -maxprocs=40 -maxperip=40 {port} {login} {imapd} Maildir\n",
            r = root.display(),
            modules = modules.display(),
            authdaemond = authdaemond.display(),
            tcpd = tcpd.display(),
            login = login.display(),
            imapd = imapd.display(),
            port = courier.port,
        );
        std::fs::write(root.join("start.sh"), script)?;
        std::fs::set_permissions(
            root.join("start.sh"),
            std::fs::Permissions::from_mode(0o755),
        )?;
        let out = std::fs::File::create(root.join("courier.log"))?;
        let child = Command::new("unshare")
            .arg("-m")
            .arg(root.join("start.sh"))
            .env("LD_LIBRARY_PATH", library_path())
            .env("GAMIN_DEBUG_SERVER", gam_server)
            .env(
                "IMAP_CAPABILITY",
                "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE",
            )
            .env("IMAP_KEYWORDS", "1")
            .env("IMAP_ACL", "1")
            .env("IMAP_ENHANCEDIDLE", "0")
            .env("IMAP_TRASHFOLDERNAME", "Trash")
            .env("IMAP_USELOCKS", "1")
            .env("IMAP_MAILBOX_SANITY_CHECK", "1")
            .env("IMAP_UMASK", "022")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .context("running unshare -m for Courier")?;
        courier.pgid = i32::try_from(child.id())?;
        let pid = child.id();
        courier.child = Some(child);
        let started = wait_for_greeting(
            courier.child.as_mut().expect("set"),
            courier.port,
            "courier",
        );
        // The namespace is known once the script runs in it (it differs from ours).
        let ours = std::fs::read_link("/proc/self/ns/mnt").ok();
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        if theirs.is_some() && theirs != ours {
            courier.namespace = theirs;
        }
        if let Err(e) = started {
            bail!("{e}\ncourier output:\n{}", courier.log_text());
        }
        Ok(courier)
    }

    fn write_userdb(&self) -> Result<()> {
        let makedat = tool("usr/lib/courier/courier-authlib/makedatprog")?;
        let etc = self.dir.path().join("etc");
        let mut public = String::new();
        let mut shadow = String::new();
        for (user, password) in &self.users {
            if user.is_empty() || user.contains(['/', '.', '\t', '\n', '|']) {
                bail!("test user names may not contain '/', '.', tabs or '|'");
            }
            let home = self.dir.path().join("home").join(user);
            for sub in ["cur", "new", "tmp"] {
                std::fs::create_dir_all(home.join("Maildir").join(sub))?;
            }
            give_to_nobody(&home)?;
            public.push_str(&format!(
                "{user}\tuid=65534|gid=65534|home={h}|mail={h}/Maildir\n",
                h = home.display()
            ));
            shadow.push_str(&format!("{user}\tsystempw={}\n", sha512_crypt(password)?));
        }
        for (name, text) in [("userdb", public), ("userdbshadow", shadow)] {
            let mut child = Command::new(&makedat)
                .arg("-")
                .arg(etc.join(format!("{name}.tmp")))
                .arg(etc.join(format!("{name}.dat")))
                .env("LD_LIBRARY_PATH", library_path())
                .stdin(Stdio::piped())
                .spawn()?;
            let mut stdin = child.stdin.take().expect("piped");
            stdin.write_all(text.as_bytes())?;
            stdin.write_all(b".\n")?;
            drop(stdin);
            if !child.wait()?.success() {
                bail!("makedatprog {name} failed");
            }
        }
        std::fs::set_permissions(
            etc.join("userdbshadow.dat"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        Ok(())
    }

    /// The Maildir of `user` on disk (folders are its `.Name` directories).
    pub fn maildir_of(&self, user: &str) -> PathBuf {
        self.dir.path().join("home").join(user).join("Maildir")
    }

    /// Port of plain IMAP on 127.0.0.1.
    pub fn imap_port(&self) -> u16 {
        self.port
    }

    /// What `authdaemond`, `couriertcpd` and `imaplogin` wrote (logins, disconnects).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("courier.log")).unwrap_or_default()
    }

    /// Connection details for `user` on the plain port.
    pub fn account(&self, user: &str, password: &str) -> Account {
        Account::plain_local(self.port, user, password)
    }

    /// Stops Courier now (also done on drop): its process group, then whatever else runs
    /// in its mount namespace (gam_server leaves the group). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child, self.pgid);
        }
        if let Some(ns) = self.namespace.take() {
            kill_namespace(&ns);
        }
    }
}

impl Drop for Courier {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kill_namespace(ns: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if std::fs::read_link(entry.path().join("ns/mnt"))
            .ok()
            .as_deref()
            == Some(ns)
        {
            // SAFETY: a process in the namespace this instance created.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn sha512_crypt(password: &str) -> Result<String> {
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running openssl passwd")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(format!("{password}\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("openssl passwd failed");
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}
