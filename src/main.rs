//! The `aezen` binary: parse configuration, build the application, serve until stopped.

use aezen::{Application, Config};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    cap_malloc_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(aezen::DEFAULT_LOG)),
        )
        .init();
    let config = Config::parse();
    config.runtime()?.block_on(async {
        Application::build(config)
            .await?
            .run_until_stopped()
            .await?;
        anyhow::Ok(())
    })?;
    Ok(())
}

/// Re-executes this binary with [`aezen::MALLOC_ARENA_MAX`] in its environment (same pid,
/// same arguments), unless it is set already. On failure it carries on with glibc's default.
fn cap_malloc_arenas() {
    use std::os::unix::process::CommandExt;

    let Some((name, value)) = aezen::malloc_arena_cap() else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(name, value)
        .exec();
    eprintln!("aezen: could not re-execute with {name}={value} ({err}); using glibc's default");
}
