//! The report: the table's lines and details, the figures' formatting, the run's description
//! (machine, revision), and the progress lines on stderr.

use std::process::Command;
use std::time::Instant;

use crate::Options;
use crate::children::LogSummary;
use crate::load::Load;

struct Line {
    row: &'static str,
    what: String,
    aezen: String,
    baseline: String,
    ratio: String,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
pub(crate) struct Report {
    lines: Vec<Line>,
    details: Vec<String>,
    pub(crate) background: String,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn line(
        &mut self,
        row: &'static str,
        what: impl Into<String>,
        aezen: impl Into<String>,
        baseline: impl Into<String>,
        ratio: impl Into<String>,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        self.lines.push(Line {
            row,
            what: what.into(),
            aezen: aezen.into(),
            baseline: baseline.into(),
            ratio: ratio.into(),
            target: target.into(),
            met,
        });
    }

    pub(crate) fn detail(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("    {text}");
        self.details.push(text);
    }

    pub(crate) fn print(&self, options: &Options, started: Instant) {
        println!(
            "\n## AEZEN benchmark ({})\n",
            if options.quick { "quick" } else { "full" }
        );
        println!("| # | what | AEZEN | baseline | ratio | target | met? |");
        println!("|---|---|---|---|---|---|---|");
        for l in &self.lines {
            let met = match l.met {
                Some(true) => "yes",
                Some(false) => "**NO**",
                None => "—",
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                l.row, l.what, l.aezen, l.baseline, l.ratio, l.target, met
            );
        }
        println!("\n### Details\n");
        for d in &self.details {
            println!("- {d}");
        }
        println!("\n### Run\n");
        println!("- machine: {}", machine());
        println!(
            "- command: `cargo bench --bench aezen{}`",
            match (options.quick, &options.rows) {
                (true, None) => " -- --quick".to_owned(),
                (false, None) => String::new(),
                (q, Some(rows)) => format!(
                    " --{} --rows {}",
                    if q { " --quick" } else { "" },
                    rows.iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            }
        );
        println!("- revision: {}", git_revision());
        println!("- background load: {}", self.background);
        println!("- wall time: {:.0} s", started.elapsed().as_secs_f64());
    }
}

pub(crate) fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "n/a".to_owned()
    }
}

pub(crate) fn per_sec(x: f64) -> String {
    format!("{x:.0}/s")
}

pub(crate) fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2} ms")
    } else {
        format!("{x:.1} ms")
    }
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores (nproc), {model}, {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn git_revision() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            let branch = run(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_default();
            format!("{rev}{} ({branch})", if dirty { "-dirty" } else { "" })
        }
        None => "unknown (not a git checkout)".to_owned(),
    }
}

pub(crate) fn step(text: &str) {
    eprintln!("[aezen-bench] {text}");
}

pub(crate) fn describe_load(report: &mut Report, name: &str, l: &Load) {
    report.detail(format!(
        "{name}: {} ok, {} errors in {:.1} s; p50 {} p90 {} p99 {} max {}; CPU (% of one core): server {:.0}%, load client {:.0}%, other processes {:.0}%; server CPU per request {:.0} µs{}",
        l.ok,
        l.errors,
        l.elapsed.as_secs_f64(),
        ms(l.p(0.5)),
        ms(l.p(0.9)),
        ms(l.p(0.99)),
        ms(l.p(1.0)),
        100.0 * l.server_cpu.as_secs_f64() / l.elapsed.as_secs_f64(),
        100.0 * l.client_cpu.as_secs_f64() / l.elapsed.as_secs_f64(),
        100.0 * l.other_cpu().as_secs_f64() / l.elapsed.as_secs_f64(),
        l.server_cpu_per_request(),
        if l.error_samples.is_empty() { String::new() } else { format!("; errors: {:?}", l.error_samples) }
    ));
}

pub(crate) fn log_detail(report: &mut Report, name: &str, log: &LogSummary) {
    report.detail(format!(
        "{name} log: {} warnings, {} errors{}",
        log.warnings,
        log.errors,
        if log.samples.is_empty() {
            String::new()
        } else {
            format!(": {:?}", log.samples)
        }
    ));
}
