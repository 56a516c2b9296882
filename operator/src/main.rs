//! `ferrumq-operator`: `run` the controller or print the `crd`.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ferrumq_operator::runtime::{self, LeaderOptions, RunOptions};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "ferrumq-operator",
    version,
    about = "Runs MqttBroker resources on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller.
    Run(RunArgs),
    /// Print the MqttBroker CustomResourceDefinition as YAML.
    Crd,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespace to watch; repeat or comma-separate for several. Default: all.
    #[arg(long = "namespace", env = "FERRUMQ_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "FERRUMQ_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Log filter: a level (info, debug, ...) or tracing directives.
    #[arg(long, env = "FERRUMQ_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format.
    #[arg(long, env = "FERRUMQ_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Elect a leader through a Lease so only one replica reconciles.
    #[arg(long, env = "FERRUMQ_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "FERRUMQ_LEASE_NAME", default_value = "ferrumq-operator")]
    lease_name: String,
    /// Namespace of the leader Lease. Default: the operator's namespace.
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// This replica's name (events, Lease identity).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
}

fn init_logging(level: &str, format: LogFormat) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(level).map_err(|e| format!("invalid --log-level {level:?}: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| format!("logging: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match ferrumq_operator::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ferrumq-operator: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            if let Err(e) = init_logging(&args.log_level, args.log_format) {
                eprintln!("ferrumq-operator: {e}");
                return ExitCode::FAILURE;
            }
            let options = RunOptions {
                namespaces: args
                    .namespaces
                    .into_iter()
                    .filter(|n| !n.is_empty())
                    .collect(),
                http_addr: args.http_addr,
                leader: args.leader_election.then_some(LeaderOptions {
                    lease_name: args.lease_name,
                    lease_namespace: args.lease_namespace,
                }),
                pod_name: args.pod_name,
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("ferrumq-operator: tokio runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(runtime::run(options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "operator stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
