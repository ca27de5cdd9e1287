//! The `aezen` binary: parse configuration, build the application, serve until stopped.

use std::process::ExitCode;

use aezen::cli::{Cli, Command};
use aezen::config::LogFormat;
use aezen::{Application, Config};
use clap::Parser;

/// jemalloc, set up by [`aezen::MALLOC_CONF`] to return freed memory to the system.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    configure_allocator();
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(config)) => serve(*config),
        Some(command) => operate(command),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("aezen: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<bool> {
    aezen::logging::init(config.log_format);
    config.runtime()?.block_on(async {
        Application::build(config)
            .await?
            .run_until_stopped()
            .await?;
        anyhow::Ok(())
    })?;
    Ok(true)
}

/// An operations command: its warnings and errors go to stderr, its answer to stdout.
fn operate(command: Command) -> anyhow::Result<bool> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::util::SubscriberInitExt::init(aezen::logging::subscriber(
        LogFormat::Text,
        filter,
        std::io::stderr,
        colour,
    ));
    match command.operation()? {
        Some(operation) => operation.run(),
        None => Ok(true),
    }
}

/// Re-executes this binary with [`aezen::MALLOC_CONF`] in its environment (same pid, same
/// arguments), unless it is set already. On failure it carries on with jemalloc's defaults.
fn configure_allocator() {
    use std::os::unix::process::CommandExt;

    let Some((name, value)) = aezen::allocator_env() else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(name, value)
        .exec();
    eprintln!("aezen: could not re-execute with {name}={value} ({err}); using jemalloc's defaults");
}
