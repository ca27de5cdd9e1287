//! The bench's child processes: the `--serve` child (the real application, as `main` runs
//! it), `Proc` (a child the bench spawned, server or baseline, killed when dropped), the waits
//! on a server (healthy, idle) and the warnings and errors it logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aezen::Application;
use aezen::config::Config;
use aezen::whatsapp::BackendKind;
use anyhow::{Context, bail};
use reqwest::StatusCode;

use crate::procfs::{self, proc_cpu, proc_memory};

/// `--serve <port-file> <root> <cache-capacity> <sessions-dir>`: the real application, with the
/// logging `main` sets up, until killed.
/// Runs the server exactly as `main` does (same runtime, same logging).
pub(crate) fn serve(args: &[String]) -> anyhow::Result<()> {
    let [port_file, root, capacity, sessions_dir] = args else {
        bail!("--serve <port-file> <root> <capacity> <sessions-dir>");
    };
    // As `main` logs (`aezen::logging::init`): to stderr, which the bench writes to the
    // child's log file, with `RUST_LOG` or the product's default filter.
    tracing_subscriber::util::SubscriberInitExt::init(aezen::logging::subscriber(
        aezen::config::LogFormat::Text,
        aezen::logging::filter(),
        std::io::stderr,
        false,
    ));
    let mut config = bench_config(Path::new(root));
    // `auto`: as the product runs by default, sized from the memory budget and file limit.
    config.tenant_cache_capacity = match capacity.as_str() {
        "auto" => None,
        n => Some(n.parse()?),
    };
    config.sessions_dir = PathBuf::from(sessions_dir);
    config.runtime()?.block_on(async {
        let app = Application::build(config).await?;
        write_port(Path::new(port_file), app.local_addr())?;
        app.run_until_stopped().await?;
        Ok(())
    })
}

pub(crate) fn bench_config(root: &Path) -> Config {
    let mut config = Config::for_data_root(root);
    config.login_per_ip_per_minute = 1_000_000;
    config.login_per_account_per_minute = 1_000_000;
    // Every bench client connects from 127.0.0.1 (row 7 opens 1,000 sockets, row 10 2,000
    // connections); the global cap (`--max-connections`) still applies.
    config.max_connections_per_ip = config.max_connections;
    config.whatsapp = BackendKind::Simulated;
    config
}

pub(crate) fn write_port(file: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, addr.to_string())?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

/// A child process (server or baseline); killed when dropped.
pub(crate) struct Proc {
    child: Option<Child>,
    pub(crate) pid: u32,
    pub(crate) addr: String,
    log: PathBuf,
    pub(crate) spawned: Instant,
}

impl Proc {
    pub(crate) fn spawn(args: &[&str], dir: &Path, name: &str) -> anyhow::Result<Self> {
        Self::spawn_with_env(args, &[], dir, name)
    }

    /// As [`Proc::spawn`], with `env` added to the child's environment (a server child reads
    /// its `AEZEN_*` settings from there: `Config::for_data_root` parses no flags but the
    /// environment).
    pub(crate) fn spawn_with_env(
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
        name: &str,
    ) -> anyhow::Result<Self> {
        let port_file = dir.join(format!("{name}.port"));
        let log = dir.join(format!("{name}.log"));
        let _ = std::fs::remove_file(&port_file);
        let spawned = Instant::now();
        let mut full: Vec<&str> = args.to_vec();
        let port_str = port_file.to_str().context("utf-8 path")?;
        // The port file is always the mode's first argument.
        full.insert(1.min(full.len()), port_str);
        // AEZEN_BENCH_WRAP="heaptrack -o /tmp/ht": run the children under a tool (their
        // pid is then the tool's, so the table's process figures are the tool's).
        let wrap = std::env::var("AEZEN_BENCH_WRAP").unwrap_or_default();
        let mut wrap = wrap.split_whitespace();
        let mut command = match wrap.next() {
            Some(tool) => {
                let mut c = Command::new(tool);
                c.args(wrap).arg(std::env::current_exe()?);
                c
            }
            None => Command::new(std::env::current_exe()?),
        };
        // As the `aezen` binary runs itself (src/main.rs).
        if let Some((name, value)) = aezen::allocator_env() {
            command.env(name, value);
        }
        let child = command
            .envs(env.iter().copied())
            .args(&full)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let pid = child.id();
        let mut proc = Self {
            child: Some(child),
            pid,
            addr: String::new(),
            log,
            spawned,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&port_file) {
                proc.addr = format!("http://{addr}");
                return Ok(proc);
            }
            if let Some(status) = proc
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "{name} exited ({status}) before listening; log:\n{}",
                    std::fs::read_to_string(&proc.log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("{name} did not listen within 60 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// VmRSS and VmHWM, in KiB.
    pub(crate) fn memory(&self) -> (u64, u64) {
        proc_memory(self.pid)
    }

    pub(crate) fn open_files(&self) -> usize {
        procfs::open_files(&self.pid.to_string())
    }

    pub(crate) fn threads(&self) -> usize {
        procfs::threads(&self.pid.to_string())
    }

    fn cpu(&self) -> Duration {
        proc_cpu(&self.pid.to_string())
    }

    /// SIGTERM (graceful: drains and closes every database), SIGKILL after 10 s.
    pub(crate) fn stop(mut self) -> LogSummary {
        if let Some(child) = self.child.take() {
            stop_child(
                child,
                "-TERM",
                Duration::from_secs(10),
                Duration::from_millis(10),
            );
        }
        LogSummary::read(&self.log)
    }

    /// The tenant cache capacity a `--serve` child chose at start-up (its `tenant cache` log
    /// line), once it is healthy.
    pub(crate) fn tenant_cache_capacity(&self) -> anyhow::Result<u64> {
        let log = std::fs::read_to_string(&self.log)?;
        log.lines()
            .filter(|line| line.contains("tenant cache"))
            .find_map(|line| {
                let at = line.find(" capacity=")? + " capacity=".len();
                let digits: String = line[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().ok()
            })
            .context("the server logged no tenant cache capacity")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `kill <signal>` to a child, up to `grace` (polled every `poll`) for it to exit, then
/// SIGKILL; reaped either way.
pub(crate) fn stop_child(mut child: Child, signal: &str, grace: Duration, poll: Duration) {
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(poll);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Warnings and errors the server logged.
#[derive(Default)]
pub(crate) struct LogSummary {
    pub(crate) warnings: usize,
    pub(crate) errors: usize,
    pub(crate) samples: Vec<String>,
}

impl LogSummary {
    fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut summary = Self::default();
        for line in text.lines() {
            let error = line.contains(" ERROR ");
            let warn = line.contains(" WARN ") && !line.contains("SIMULATED");
            if error {
                summary.errors += 1;
            } else if warn {
                summary.warnings += 1;
            }
            if (error || warn) && summary.samples.len() < 5 {
                summary.samples.push(line.chars().take(300).collect());
            }
        }
        summary
    }
}

/// Waits until the server process uses less than 5% of a core over 200 ms.
pub(crate) async fn wait_idle(server: &Proc, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let before = server.cpu();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let used = server.cpu().saturating_sub(before);
        if used <= Duration::from_millis(10) || Instant::now() > deadline {
            return;
        }
    }
}

pub(crate) async fn wait_healthy(
    http: &reqwest::Client,
    addr: &str,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if let Ok(res) = http.get(format!("{addr}/api/healthz")).send().await
            && res.status() == StatusCode::OK
        {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("{addr} not healthy within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
