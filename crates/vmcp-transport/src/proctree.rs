//! The process tree under an upstream, read from `/proc`: a stdio server may start helpers in
//! other process groups or sessions (`setsid`), out of reach of the group signal that ends the
//! server. They are found by parent links while the server still runs, and ended with it.
//!
//! A helper whose parent exits before the server ends (a double fork) is re-parented: to init,
//! or to the nearest ancestor that declared itself a child subreaper. The `vmcp` binary is one,
//! so such orphans become its children; `adopted_orphans` lists them for the binary to reap and,
//! at shutdown, to end.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The pids of the processes this crate started itself (stdio servers); not orphans.
static LEADERS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

pub(crate) fn register_leader(pid: i32) {
    LEADERS
        .lock()
        .expect("leaders lock")
        .get_or_insert_with(HashSet::new)
        .insert(pid);
}

pub(crate) fn forget_leader(pid: i32) {
    if let Some(set) = LEADERS.lock().expect("leaders lock").as_mut() {
        set.remove(&pid);
    }
}

/// (pid, parent pid, state) of every process.
fn processes() -> Vec<(i32, i32, char)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some((pid, ppid, state))
    })
    .collect()
}

/// Every live descendant of `root` (not `root` itself), whatever its group or session.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, ppid, state) in processes() {
        if state != 'Z' {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            found.push(c);
            stack.push(c);
        }
    }
    found
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat[stat.rfind(')')? + 2..].chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// Reaps the members of process group `pgid` that are this process's children and have exited
/// (members that outlived their leader are re-parented to a child subreaper, and would stay
/// zombies, which count as alive for a group signal).
pub fn reap_group(pgid: i32) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(status) = waitpid(Pid::from_raw(-pgid), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Ends `pids`: SIGTERM, up to `grace` to go, then SIGKILL.
pub async fn end_all(pids: &[i32], grace: Duration) {
    let live: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    if live.is_empty() {
        return;
    }
    for p in &live {
        let _ = kill(Pid::from_raw(*p), Signal::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    while live.iter().any(|p| alive(*p)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in live.iter().filter(|p| alive(**p)) {
        tracing::info!(pid = p, "ending a process an MCP server left behind");
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
}

/// Children of this process that it did not start as MCP servers: orphans of upstreams,
/// adopted because the process is a child subreaper. (pid, is a zombie.)
pub fn adopted_orphans() -> Vec<(i32, bool)> {
    let me = std::process::id() as i32;
    let leaders = LEADERS
        .lock()
        .expect("leaders lock")
        .clone()
        .unwrap_or_default();
    processes()
        .into_iter()
        .filter(|&(pid, ppid, _)| ppid == me && !leaders.contains(&pid))
        .map(|(pid, _, state)| (pid, state == 'Z'))
        .collect()
}
