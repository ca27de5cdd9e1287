//! The `aezen` binary: parse configuration, build the application, serve until stopped.

use aezen::{Application, Config};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
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
