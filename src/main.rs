use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use onshi_gateway::cli::{
    AuditCommand, CertsCommand, Cli, Command, ConfigCommand, InvalidInput, RegistryCommand,
};
use onshi_gateway::cli::{
    activation as activation_cli, audit as audit_cli, commands, config as config_cli,
    registry as registry_cli, review as review_cli, witness as witness_cli,
};
use onshi_gateway::clock::SystemClock;
use onshi_gateway::config::{Problems, check::check};
use onshi_gateway::telemetry::logging;

// Calls allocate many small, short-lived objects across worker threads; mimalloc
// serves them with less CPU than glibc's malloc (docs/performance.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (settings, mut problems) = cli.command.settings(&cli.log);
    // A gateway is only started from settings that pass `config check`.
    if let Command::Serve(_) | Command::Demo(_) | Command::Config(ConfigCommand::Check(_)) =
        &cli.command
    {
        problems.problems.extend(check(&settings));
    }
    if !problems.problems.is_empty() {
        return refuse(&problems);
    }
    // The demo prints its own story; per-call log lines would drown it unless asked for.
    let level = match (&cli.command, settings.log.level.as_str()) {
        (Command::Demo(_), "info") => "warn",
        (_, level) => level,
    };
    // Only a running gateway exports traces; the one-shot commands do not.
    let telemetry = match &cli.command {
        Command::Serve(_) | Command::Demo(_) => Some(settings.gateway_config().telemetry),
        _ => None,
    };
    let export = match logging::init(level, settings.log.format, telemetry.as_ref()) {
        Ok(export) => export,
        Err(e) => {
            eprintln!("error: log.level or telemetry: {e:#}");
            return ExitCode::from(2);
        }
    };
    let clock = Arc::new(SystemClock);
    let result = match cli.command {
        Command::Serve(_) => commands::serve(settings.gateway_config(), clock).await,
        Command::Demo(args) => commands::demo(&settings, args.exit, clock).await,
        Command::Upstream(args) => commands::upstream(args).await,
        Command::Activation(command) => match activation_cli::run(command).await {
            // Not an error: the answer, for scripts.
            Ok(activation_cli::Outcome::Refused) => {
                return ExitCode::from(activation_cli::REFUSED_EXIT_STATUS);
            }
            Ok(activation_cli::Outcome::Done) => Ok(()),
            Err(e) => Err(e),
        },
        Command::Site(command) => match onshi_gateway::cli::site::run(command).await {
            Ok(activation_cli::Outcome::Refused) => {
                return ExitCode::from(activation_cli::REFUSED_EXIT_STATUS);
            }
            Ok(activation_cli::Outcome::Done) => Ok(()),
            Err(e) => Err(e),
        },
        Command::Audit(command) => match audit(command).await {
            Ok(true) => Ok(()),
            // Distinct from an error (1) and bad input (2): the log itself is broken,
            // or does not extend a checkpoint seen before.
            Ok(false) => return ExitCode::from(3),
            Err(e) => Err(e),
        },
        Command::Certs(CertsCommand::Dev(args)) => commands::certs_dev(args),
        Command::Certs(CertsCommand::Issue(args)) => commands::certs_issue(&args, clock.as_ref()),
        Command::Registry(RegistryCommand::Load(args)) => registry_cli::load(args).await,
        Command::Registry(RegistryCommand::Show(args)) => registry_cli::show(args).await,
        Command::Config(ConfigCommand::Check(args)) => {
            config_cli::check_command(&settings, args.data.config_name())
        }
        Command::Config(ConfigCommand::Print(args)) => {
            config_cli::print_command(&settings, args.data.config_name())
        }
    };
    if let Some(export) = export {
        export.shutdown().await;
    }
    exit_code(result)
}

/// 0, or the error printed: bad input and unusable settings exit 2, others 1.
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    let Err(e) = result else {
        return ExitCode::SUCCESS;
    };
    if let Some(problems) = e.downcast_ref::<Problems>() {
        return refuse(problems);
    }
    if e.downcast_ref::<InvalidInput>().is_some() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}

/// The audit commands; `Ok(false)` when the log is broken or does not extend a
/// checkpoint seen before.
async fn audit(command: AuditCommand) -> anyhow::Result<bool> {
    match command {
        AuditCommand::List(args) => audit_cli::list(args).await.map(|()| true),
        AuditCommand::Export(args) => audit_cli::export(args).await.map(|()| true),
        AuditCommand::Verify(args) => audit_cli::verify(args).await,
        AuditCommand::Witness(args) => witness_cli::witness(args).await,
        AuditCommand::Review(command) => review_cli::run(command).await.map(|()| true),
    }
}

/// A configuration that cannot be used: every problem, exit 2.
fn refuse(problems: &Problems) -> ExitCode {
    eprintln!("error: {problems}");
    ExitCode::from(2)
}
