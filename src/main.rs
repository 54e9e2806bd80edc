#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use telemetry_server::config::{Cli, Command, Config, GenerateArgs, LogFormat};
use telemetry_server::{retention, server, synthetic};
use tracing_subscriber::EnvFilter;

// Request handling allocates many short-lived small objects (decoded JSON, report columns); glibc's
// allocator spent about a quarter of the service's CPU on them under load (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.config);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate(args) => server::migrate_only(&cli.config, args.distribute).await,
        Command::Serve => serve(&cli.config).await,
        Command::Generate(args) => generate(&cli.config, &args).await,
        Command::Retention => retention_once(&cli.config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "telemetry-server stopped");
            eprintln!("telemetry-server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config) -> Result<(), server::StartupError> {
    let running = server::start(config).await?;
    let pool = running.pool.clone();
    shutdown_signal().await;
    let stopped = running.shutdown().await;
    // Say goodbye to each database session rather than drop its socket, which PostgreSQL logs as
    // a client that went away.
    pool.close().await;
    stopped
}

async fn generate(config: &Config, args: &GenerateArgs) -> Result<(), server::StartupError> {
    let pool = server::connect_and_migrate(config).await?;
    let summary = synthetic::generate(&pool, &synthetic::Settings::from(args)).await?;
    println!("{summary}");
    pool.close().await;
    Ok(())
}

async fn retention_once(config: &Config) -> Result<(), server::StartupError> {
    let pool = server::connect_and_migrate(config).await?;
    let run = retention::run_once(&pool, config.retention().keep_reports, chrono::Utc::now()).await;
    pool.close().await;
    println!("{}", run?);
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.rust_log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
