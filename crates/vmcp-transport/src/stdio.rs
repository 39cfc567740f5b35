//! stdio upstreams: the server runs as a child process in its own process group, speaking
//! newline-delimited JSON-RPC on stdin/stdout. Its stderr, and any stdout line that is not
//! JSON-RPC, go to the server's log. Shutdown ends the whole group, grandchildren included
//! (`npx` starts `sh`, which starts `node`): close stdin, wait, SIGTERM the group, wait, SIGKILL.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use vmcp_domain::ServerConfig;

use crate::LogBuffer;
use crate::lines::{Frame, Lines};

/// Longest stdout line accepted from a server, in bytes.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The child process and its group. Dropping it kills the group.
pub struct ProcessGroup {
    child: Child,
    pgid: Pid,
    ended: bool,
    /// Descendants outside the group, noted while their parent links still lead to the leader.
    escaped: Vec<i32>,
    /// The task copying stderr to the log; it ends when stderr closes.
    stderr: Option<tokio::task::JoinHandle<()>>,
}

impl ProcessGroup {
    pub fn pid(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    /// The leader's exit status, if it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// How the leader ended, in words: "exited with status 2", "was killed by signal 9".
    /// Waits up to `patience` for an exit that is under way (its output closes a moment before
    /// the exit status is known).
    pub async fn exit_description(&mut self, patience: Duration) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        let status = match self.exit_status() {
            Some(s) => s,
            None => tokio::time::timeout(patience, self.child.wait())
                .await
                .ok()?
                .ok()?,
        };
        // The leader is gone: let its last words reach the log (unless a grandchild holds
        // stderr open).
        if let Some(task) = self.stderr.as_mut()
            && tokio::time::timeout(Duration::from_millis(300), task)
                .await
                .is_ok()
        {
            self.stderr = None;
        }
        Some(match (status.code(), status.signal()) {
            (Some(code), _) => format!("the process exited with status {code}"),
            (None, Some(signal)) => format!("the process was killed by signal {signal}"),
            _ => format!("the process ended ({status})"),
        })
    }

    /// Notes the descendants in other groups or sessions (`setsid`), to end them with the group
    /// even once the leader is gone. Call before anything that may end the leader.
    pub fn note_descendants(&mut self) {
        if self.exit_status().is_some() {
            // The leader is gone (its pid may be reused): its children were re-parented.
            return;
        }
        for p in crate::proctree::descendants(self.pgid.as_raw()) {
            if nix::unistd::getpgid(Some(Pid::from_raw(p))).ok() != Some(self.pgid)
                && !self.escaped.contains(&p)
            {
                self.escaped.push(p);
            }
        }
    }

    fn group_alive(&self) -> bool {
        // Signal 0 checks for existence. Zombies count as alive until reaped by their parent.
        killpg(self.pgid, None).is_ok()
    }

    /// Ends the group: waits `grace` for the leader to exit on its own (its stdin is closed),
    /// then SIGTERM, then SIGKILL; then does the same for members that outlived the leader, and
    /// for descendants in other groups or sessions (found before the leader goes, while their
    /// parent links still lead to it).
    pub async fn terminate(&mut self, grace: Duration) {
        if self.ended {
            return;
        }
        self.note_descendants();
        let escaped = std::mem::take(&mut self.escaped);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = killpg(self.pgid, Signal::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                let _ = killpg(self.pgid, Signal::SIGKILL);
                let _ = self.child.wait().await;
            }
        }
        // Orphans of the group are not our children to wait for, unless this process is a
        // child subreaper (then they are reaped here); signal until they are gone.
        crate::proctree::reap_group(self.pgid.as_raw());
        if self.group_alive() {
            let _ = killpg(self.pgid, Signal::SIGTERM);
            let deadline = tokio::time::Instant::now() + grace;
            while self.group_alive() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                crate::proctree::reap_group(self.pgid.as_raw());
            }
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
        crate::proctree::end_all(&escaped, grace).await;
        crate::proctree::forget_leader(self.pgid.as_raw());
        self.ended = true;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if !self.ended {
            // The leader is reaped by tokio (kill_on_drop); the group and the descendants in
            // other groups get SIGKILL.
            if self.exit_status().is_none() {
                for p in crate::proctree::descendants(self.pgid.as_raw()) {
                    let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
            let _ = killpg(self.pgid, Signal::SIGKILL);
            crate::proctree::forget_leader(self.pgid.as_raw());
        }
    }
}

/// Starts the command of a stdio config in a new process group.
pub fn spawn(
    config: &ServerConfig,
    log: &LogBuffer,
) -> Result<(StdioTransport, ProcessGroup), std::io::Error> {
    let program = config.command.as_deref().unwrap_or_default();
    let mut cmd = Command::new(program);
    cmd.args(&config.args)
        .envs(&config.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(cwd) = &config.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id().expect("a just-spawned child has a pid");
    crate::proctree::register_leader(pid as i32);
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let stderr_log = log.clone();
    let stderr_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let kept = stderr_log.keep(&line);
            tracing::debug!(target: "vmcp::upstream::stderr", "{kept}");
        }
    });
    let transport = StdioTransport {
        stdout: BufReader::with_capacity(64 * 1024, stdout),
        lines: Lines::new(MAX_LINE_BYTES),
        stdin: Arc::new(tokio::sync::Mutex::new(Some(BufWriter::new(stdin)))),
        log: log.clone(),
    };
    let group = ProcessGroup {
        child,
        pgid: Pid::from_raw(pid as i32),
        ended: false,
        escaped: Vec::new(),
        stderr: Some(stderr_task),
    };
    Ok((transport, group))
}

/// Newline-delimited JSON-RPC over a child's stdin and stdout.
pub struct StdioTransport {
    stdout: BufReader<ChildStdout>,
    /// The line being read (kept here, not in `receive`'s future, so that a cancelled
    /// `receive` loses nothing).
    lines: Lines,
    stdin: Arc<tokio::sync::Mutex<Option<BufWriter<ChildStdin>>>>,
    log: LogBuffer,
}

impl StdioTransport {
    /// Reads up to the next newline (cancel-safe); `None` at the end of stdout.
    async fn read_line(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            let available = self.stdout.fill_buf().await?;
            if available.is_empty() {
                return Ok(None);
            }
            let (consumed, frame) = self.lines.feed(available);
            self.stdout.consume(consumed);
            if frame.is_some() {
                return Ok(frame);
            }
        }
    }
}

impl Transport<RoleClient> for StdioTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let stdin = self.stdin.clone();
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            let mut guard = stdin.lock().await;
            let writer = guard.as_mut().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin is closed")
            })?;
            writer.write_all(&line).await?;
            writer.flush().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            match self.read_line().await {
                Ok(None) => return None,
                Ok(Some(Frame::TooLong)) => self.log.push(&format!(
                    "[vmcp] discarded a stdout line longer than {MAX_LINE_BYTES} bytes"
                )),
                Ok(Some(Frame::Line(line))) => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice(&line) {
                        Ok(message) => return Some(message),
                        Err(e) => self.log.push(&format!(
                            "[vmcp] stdout line is not JSON-RPC ({e}): {}",
                            String::from_utf8_lossy(&line)
                        )),
                    }
                }
                Err(e) => {
                    self.log.push(&format!("[vmcp] reading stdout failed: {e}"));
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        if let Some(mut writer) = self.stdin.lock().await.take() {
            let _ = writer.shutdown().await;
        }
        Ok(())
    }
}
