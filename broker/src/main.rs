//! `ferrumq-broker`: runs the broker. With no arguments it uses the embedded defaults
//! (MQTT on 0.0.0.0:1883).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferrumq_broker::config::{BrokerConfig, LogFormat};
use ferrumq_broker::listeners;

/// Counts every heap allocation, for the `ferrumq_heap_*` metrics (allocations per delivered
/// message). Its cost is a few thread-local increments per allocation; see `benches/RESULTS.md`.
#[global_allocator]
static ALLOCATOR: ferrumq_broker::alloc::CountingAllocator =
    ferrumq_broker::alloc::CountingAllocator;

#[derive(Debug, Parser)]
#[command(
    name = "ferrumq-broker",
    version,
    about = "FerrumQ MQTT 3.1.1 and 5.0 broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// YAML configuration file (see broker/config/ferrumq.example.yaml); defaults when absent.
    #[arg(short, long, env = "FERRUMQ_CONFIG")]
    config: Option<PathBuf>,
    /// Bind address of the first MQTT listener, overriding the file (e.g. 127.0.0.1:1883).
    #[arg(long, env = "FERRUMQ_LISTEN")]
    listen: Option<String>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, env = "FERRUMQ_LOG_LEVEL")]
    log_level: Option<String>,
    /// Bind address of the admin HTTP listener (/metrics, /healthz, /readyz, /drain).
    #[arg(long, env = "FERRUMQ_ADMIN_LISTEN")]
    admin_listen: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print a password file line for USERNAME (Mosquitto's `$7$` PBKDF2-SHA512 format, so
    /// Mosquitto reads it too), with the password read from the first line of standard input:
    /// `ferrumq-broker passwd alice < password >> passwords`.
    Passwd {
        username: String,
        /// PBKDF2 iterations (mosquitto_passwd's default; each CONNECT with a password pays
        /// them).
        #[arg(long, default_value_t = ferrumq_broker::auth::DEFAULT_ITERATIONS)]
        iterations: u32,
    },
    /// Ask a running broker to stop accepting clients and disconnect them (a pod's preStop).
    /// Returns when the broker reports that its clients are gone.
    Drain {
        /// The broker's admin address.
        #[arg(long, default_value = "127.0.0.1:9464")]
        admin: String,
    },
}

fn main() -> ExitCode {
    // Before any other thread allocates: see the function's documentation.
    ferrumq_broker::alloc::use_one_malloc_arena();
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Drain { admin }) => return drain(admin),
        Some(Command::Passwd {
            username,
            iterations,
        }) => return passwd(username, *iterations),
        None => {}
    }
    let mut config = match BrokerConfig::load_or_default(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ferrumq-broker: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = cli.listen {
        if let Some(first) = config.listeners.first_mut() {
            first.bind = listen;
        }
    }
    if let Some(admin) = cli.admin_listen {
        config.admin.bind = admin;
    }
    if let Err(error) = config.validate() {
        eprintln!("ferrumq-broker: configuration error: {error}");
        return ExitCode::from(2);
    }
    init_logging(&config, cli.log_level.as_deref(), cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(ferrumq_broker::pool::flush_deferred_releases)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ferrumq-broker: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: BrokerConfig) -> ExitCode {
    let running = match listeners::start(config).await {
        Ok(running) => running,
        Err(error) => {
            tracing::error!(%error, "broker failed to start");
            eprintln!("ferrumq-broker: {error}");
            return ExitCode::FAILURE;
        }
    };
    reload_on_hangup(running.reloader());
    wait_for_signal().await;
    tracing::info!("shutting down: disconnecting clients");
    running.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// SIGHUP re-reads the authentication and TLS files at once (as Mosquitto's does), without
/// waiting for their reload intervals.
fn reload_on_hangup(reloader: ferrumq_broker::listeners::Reloader) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let reloading = reloader.clone();
                let _ = tokio::task::spawn_blocking(move || reloading.reload()).await;
            }
        });
    }
    #[cfg(not(unix))]
    drop(reloader);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logging(config: &BrokerConfig, level: Option<&str>, json: bool) {
    let level = level.unwrap_or(config.log.level.as_str());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json || config.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `ferrumq-broker passwd`: one password file line on standard output.
fn passwd(username: &str, iterations: u32) -> ExitCode {
    let mut password = String::new();
    if let Err(error) = std::io::stdin().read_line(&mut password) {
        eprintln!("ferrumq-broker passwd: cannot read the password from standard input: {error}");
        return ExitCode::from(2);
    }
    let password = password.trim_end_matches(['\n', '\r']);
    match ferrumq_broker::auth::password_line(username, password.as_bytes(), iterations) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("ferrumq-broker passwd: {error}");
            ExitCode::from(2)
        }
    }
}

/// `ferrumq-broker drain`: POSTs to the admin endpoint and reports its answer. A plain
/// HTTP/1.0 request keeps the image free of an HTTP client library for this one call.
fn drain(admin: &str) -> ExitCode {
    use std::io::{Read, Write};
    let result = (|| -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect(admin)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(600)))?;
        stream.write_all(b"POST /drain HTTP/1.0\r\nContent-Length: 0\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })();
    match result {
        Ok(response)
            if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") =>
        {
            println!("drained");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!(
                "ferrumq-broker drain: {}",
                response.lines().next().unwrap_or("no answer")
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("ferrumq-broker drain: cannot reach {admin}: {error}");
            ExitCode::FAILURE
        }
    }
}
