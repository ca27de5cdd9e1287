//! Figures read from /proc: a process's memory (once, or its peak sampled over an operation),
//! CPU time, open files and threads, the machine's busy CPU time; and an optional
//! `perf record` of a server.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::children::stop_child;
use crate::report::mib;

/// The `kB` fields `names` of /proc/<pid>/status, in order (0 for one that is missing).
fn status_kib<const N: usize>(pid: u32, names: [&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// VmRSS and VmHWM of a process, in KiB.
pub(crate) fn proc_memory(pid: u32) -> (u64, u64) {
    let [rss, hwm] = status_kib(pid, ["VmRSS:", "VmHWM:"]);
    (rss, hwm)
}

/// A thread reading a process's VmRSS every `period` until stopped: the peak of an operation.
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, usize)>,
}

impl RssSampler {
    pub(crate) fn start(pid: u32, period: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut peak, mut samples) = (0, 0);
            loop {
                peak = peak.max(proc_memory(pid).0);
                samples += 1;
                if stopped.load(Ordering::Relaxed) {
                    return (peak, samples);
                }
                std::thread::sleep(period);
            }
        });
        Self { stop, thread }
    }

    /// The highest VmRSS seen (KiB; one last sample is taken now) and how many samples.
    pub(crate) fn stop(self) -> (u64, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or((0, 0))
    }
}

/// "anon A + file F + shmem S" of a process's RSS.
pub(crate) fn rss_breakdown(pid: u32) -> String {
    let [anon, file, shmem] = status_kib(pid, ["RssAnon:", "RssFile:", "RssShmem:"]);
    format!(
        "anon {} + file {} + shmem {}",
        mib(anon),
        mib(file),
        mib(shmem)
    )
}

/// Open file descriptors of a process (`self` or a pid).
pub(crate) fn open_files(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Threads of a process (`self` or a pid).
pub(crate) fn threads(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

/// User + system CPU time of a process (`self` or a pid), from /proc/<pid>/stat.
pub(crate) fn proc_cpu(pid: &str) -> Duration {
    stat_cpu(pid, [11, 12])
}

/// CPU time of this process's children that have been waited for (`cutime + cstime`): the
/// load generator's, once it exited.
pub(crate) fn children_cpu() -> Duration {
    stat_cpu("self", [13, 14])
}

/// The sum of two CPU-time fields of /proc/<pid>/stat, counted from the field after the
/// command's closing parenthesis (11, 12: utime, stime; 13, 14: cutime, cstime).
fn stat_cpu(pid: &str, fields: [usize; 2]) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let values: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields
        .iter()
        .filter_map(|&i| values.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// Busy CPU time of the whole machine (all cores), from /proc/stat.
pub(crate) fn machine_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .enumerate()
        // user nice system idle iowait irq softirq steal: all but idle (3) and iowait (4).
        .filter(|(i, _)| *i < 8 && *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// `perf record` on a server while one load phase runs (only with AEZEN_BENCH_PERF=<dir>).
pub(crate) struct Perf(Option<Child>);

impl Perf {
    pub(crate) fn start(dir: Option<&Path>, pid: u32, name: &str) -> Self {
        let Some(dir) = dir else { return Self(None) };
        let _ = std::fs::create_dir_all(dir);
        let out = dir.join(format!("{name}.data"));
        let child = Command::new("perf")
            .args([
                "record",
                "-F",
                "249",
                "--call-graph",
                "dwarf,32768",
                "-p",
                &pid.to_string(),
                "-o",
            ])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        std::thread::sleep(Duration::from_millis(300));
        Self(child)
    }

    pub(crate) fn stop(mut self) {
        if let Some(child) = self.0.take() {
            stop_child(
                child,
                "-INT",
                Duration::from_secs(30),
                Duration::from_millis(20),
            );
        }
    }
}
