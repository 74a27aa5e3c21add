use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use onshi_gateway::cli::{AuditCommand, CertsCommand, Cli, Command, InvalidInput, RegistryCommand};
use onshi_gateway::clock::SystemClock;
use onshi_gateway::{activation_cli, audit_cli, commands, registry_cli};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story; per-call log lines would drown it unless asked for.
    let filter = match (&cli.command, cli.log.as_str()) {
        (Command::Demo(_), "info") => "warn",
        (_, f) => f,
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let clock = Arc::new(SystemClock);
    let result = match cli.command {
        Command::Serve(args) => commands::serve(args.to_config(), clock).await,
        Command::Demo(args) => commands::demo(args, clock).await,
        Command::Upstream(args) => commands::upstream(args).await,
        Command::Activation(command) => activation_cli::run(command).await,
        Command::Audit(AuditCommand::List(args)) => audit_cli::list(args).await,
        Command::Audit(AuditCommand::Export(args)) => audit_cli::export(args).await,
        Command::Audit(AuditCommand::Verify(args)) => match audit_cli::verify(args).await {
            Ok(true) => Ok(()),
            // Distinct from an error (1) and bad input (2): the log itself is broken.
            Ok(false) => return ExitCode::from(3),
            Err(e) => Err(e),
        },
        Command::Certs(CertsCommand::Dev(args)) => commands::certs_dev(args),
        Command::Registry(RegistryCommand::Load(args)) => registry_cli::load(args).await,
        Command::Registry(RegistryCommand::Show(args)) => registry_cli::show(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<InvalidInput>().is_some() {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
