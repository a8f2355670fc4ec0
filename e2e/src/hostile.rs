//! Scripted hostile IMAP servers on loopback, and a way to run a process against them
//! and see how it ended (exit code or signal, peak memory, time).
//!
//! The hostile bytes are what is under test, so these servers are scripts, not Dovecot:
//! each answers just enough IMAP to lead the client to the behaviour it stages.

use crate::ports::free_port;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a scripted server does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// The first response announces a literal of 1 TiB (`* ID ("name" {1099511627776}`),
    /// then nothing. (A `{n}` ending `* OK ...` is the greeting's words, not a literal.)
    HugeGreetingLiteral,
    /// The greeting's response code holds 100,000 `(` (a code's arguments are parsed).
    DeepNesting,
    /// Sane up to login; LIST is answered with untagged responses that never end.
    UntaggedFlood,
    /// The greeting comes one byte every 200 ms and its line never ends.
    ByteDrip,
    /// Sane up to login; LIST is answered with one `* OK` line every 300 ms, never the end.
    LineDrip,
    /// Lists one message of 22 bytes, then announces a 1 TiB body for it.
    HugeBody,
    /// A target whose APPENDUID names over four billion UIDs in ranges of a million.
    HugeAppendUid,
    /// Not hostile: an INBOX with one message of 22 bytes (a source for the others).
    Tame,
}

/// The one message of [`Hostility::Tame`] and [`Hostility::HugeBody`].
pub const MESSAGE: &[u8] = b"Subject: hello\r\n\r\nhi\r\n";

/// A scripted server on 127.0.0.1; stops accepting (and its connections end) on drop.
pub struct HostileServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl HostileServer {
    pub fn start(hostility: Hostility) -> std::io::Result<HostileServer> {
        let port = free_port();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let stopping = stopping.clone();
                        std::thread::spawn(move || {
                            // A client that hangs up mid-script is what most tests expect.
                            let _ = serve(stream, hostility, &stopping);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(HostileServer { port, stop })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Keeps a connection open without sending anything until the client leaves.
fn hold(stream: &mut TcpStream, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut sink = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn serve(mut stream: TcpStream, hostility: Hostility, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    match hostility {
        Hostility::HugeGreetingLiteral => {
            stream.write_all(b"* ID (\"name\" {1099511627776}\r\n")?;
            return hold(&mut stream, stop);
        }
        Hostility::DeepNesting => {
            let mut greeting = b"* OK [CAPABILITY ".to_vec();
            greeting.extend(std::iter::repeat_n(b'(', 100_000));
            greeting.extend_from_slice(b"\r\n");
            stream.write_all(&greeting)?;
            return hold(&mut stream, stop);
        }
        Hostility::ByteDrip => {
            stream.write_all(b"* OK ")?;
            while !stop.load(Ordering::SeqCst) {
                stream.write_all(b"x")?;
                std::thread::sleep(Duration::from_millis(200));
            }
            return Ok(());
        }
        _ => stream.write_all(
            b"* OK [CAPABILITY IMAP4rev1 UIDPLUS LITERAL+] scripted test server ready\r\n",
        )?,
    }
    let has_message = matches!(hostility, Hostility::Tame | Hostility::HugeBody);
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let Some(command) = read_command(&mut reader, &mut stream)? else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&command).into_owned();
        let mut words = text.split_whitespace();
        let tag = words.next().unwrap_or("*").to_owned();
        let mut verb = words.next().unwrap_or("").to_ascii_uppercase();
        if verb == "UID" {
            verb = format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase());
        }
        let upper = text.to_ascii_uppercase();
        let reply = match verb.as_str() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 UIDPLUS LITERAL+\r\n{tag} OK done\r\n"),
            "LOGOUT" => {
                stream.write_all(format!("* BYE bye\r\n{tag} OK done\r\n").as_bytes())?;
                return Ok(());
            }
            "LIST" if hostility == Hostility::UntaggedFlood => {
                let chunk = "* LIST (\\HasNoChildren) \"/\" INBOX\r\n".repeat(2000);
                while !stop.load(Ordering::SeqCst) {
                    stream.write_all(chunk.as_bytes())?;
                }
                return Ok(());
            }
            "LIST" if hostility == Hostility::LineDrip => {
                while !stop.load(Ordering::SeqCst) {
                    stream.write_all(b"* OK still listing\r\n")?;
                    std::thread::sleep(Duration::from_millis(300));
                }
                return Ok(());
            }
            "LIST" => format!("* LIST (\\HasNoChildren) \"/\" INBOX\r\n{tag} OK done\r\n"),
            "SELECT" | "EXAMINE" => {
                let n = u32::from(has_message);
                format!(
                    "* {n} EXISTS\r\n* FLAGS (\\Seen)\r\n* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n\
                     * OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT {}] ok\r\n{tag} OK done\r\n",
                    n + 1
                )
            }
            "STATUS" => {
                let n = u32::from(has_message);
                format!(
                    "* STATUS INBOX (UIDNEXT {} UIDVALIDITY 7 MESSAGES {n})\r\n{tag} OK done\r\n",
                    n + 1
                )
            }
            "UID FETCH" if !has_message => format!("{tag} OK done\r\n"),
            "UID FETCH" if upper.contains("[HEADER") => {
                let header = b"Subject: hello\r\n\r\n";
                format!(
                    "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {{{}}}\r\nSubject: hello\r\n\r\n)\r\n{tag} OK done\r\n",
                    header.len()
                )
            }
            "UID FETCH"
                if upper.contains("BODY.PEEK[]")
                    || upper.contains("BODY[]")
                    || upper.contains("BINARY")
                    || upper.contains("RFC822.PEEK")
                    || upper.contains("RFC822)") =>
            {
                if hostility == Hostility::HugeBody {
                    stream.write_all(b"* 1 FETCH (UID 1 BODY[] {1099511627776}\r\nSubject: ")?;
                    hold(&mut stream, stop)?;
                    return Ok(());
                }
                let mut out = format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\n", MESSAGE.len()).into_bytes();
                out.extend_from_slice(MESSAGE);
                out.extend_from_slice(format!(")\r\n{tag} OK done\r\n").as_bytes());
                stream.write_all(&out)?;
                continue;
            }
            "UID FETCH" => format!(
                "* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"01-Jan-2020 00:00:00 +0000\" RFC822.SIZE {})\r\n{tag} OK done\r\n",
                MESSAGE.len()
            ),
            "APPEND" if hostility == Hostility::HugeAppendUid => {
                let ranges: Vec<String> = (0..4300u64)
                    .map(|i| format!("{}:{}", i * 1_000_000 + 1, (i + 1) * 1_000_000))
                    .filter(|r| r.split(':').all(|n| n.parse::<u32>().is_ok()))
                    .collect();
                format!("{tag} OK [APPENDUID 7 {}] done\r\n", ranges.join(","))
            }
            "APPEND" => format!("{tag} OK [APPENDUID 7 1] done\r\n"),
            _ => format!("{tag} OK done\r\n"),
        };
        stream.write_all(reply.as_bytes())?;
    }
}

/// Reads one client command, literals included (answering `+` to synchronising ones).
fn read_command(
    reader: &mut BufReader<TcpStream>,
    stream: &mut TcpStream,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut command = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        command.extend_from_slice(&line);
        let Some((len, sync)) = literal_at_end(&line) else {
            return Ok(Some(command));
        };
        if sync {
            stream.write_all(b"+ go on\r\n")?;
        }
        // The client is Mailferry sending a test message: small, but never trust a length.
        let mut literal = Vec::new();
        reader
            .by_ref()
            .take(len.min(64 << 20))
            .read_to_end(&mut literal)?;
        command.extend_from_slice(&literal);
    }
}

/// `{n}` or `{n+}` at the end of a command line: its length and whether it waits for `+`.
fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let text = std::str::from_utf8(line).ok()?.trim_end();
    let inner = text.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    let digits = &inner[open + 1..];
    match digits.strip_suffix('+') {
        Some(d) => Some((d.parse().ok()?, false)),
        None => Some((digits.parse().ok()?, true)),
    }
}

/// How a process ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it (6 is SIGABRT, 11 SIGSEGV), when one did.
    pub signal: Option<i32>,
    /// Its peak resident memory, in KiB.
    pub max_rss_kb: u64,
    pub elapsed: Duration,
    /// Killed by us after the time bound.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end (killing it after `bound`), and reports how it ended, with
/// its own peak memory (from `wait4`, so no other process is counted).
pub fn run_bounded(mut command: Command, bound: Duration) -> std::io::Result<Finished> {
    let out = tempfile::tempfile()?;
    let err = tempfile::tempfile()?;
    command
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?);
    let child = command.spawn()?;
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut timed_out = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: rusage is plain data, and pid is our own child, waited only here.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if started.elapsed() > bound && !timed_out {
            timed_out = true;
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let read = |mut f: std::fs::File| -> std::io::Result<String> {
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0))?;
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        Ok(s)
    };
    let exited = libc::WIFEXITED(status);
    let signalled = libc::WIFSIGNALED(status);
    Ok(Finished {
        code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: signalled.then(|| libc::WTERMSIG(status)),
        max_rss_kb: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        elapsed,
        timed_out,
        stdout: read(out)?,
        stderr: read(err)?,
    })
}
