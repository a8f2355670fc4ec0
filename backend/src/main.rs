use clap::Parser;
use mailferry::cli::{Cli, Command};
use mailferry::{config::Config, startup, telemetry};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log.as_deref());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("mailferry: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut exit = ExitCode::SUCCESS;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Migrate(args) => {
                exit = mailferry::migrate_cmd::run(cli.config.as_deref(), *args).await;
                Ok(())
            }
            Command::Staff(command) => {
                mailferry::staff_cmd::run(cli.config.as_deref(), command).await
            }
            Command::Serve(args) => {
                let config = Config::load(cli.config.as_deref(), &args)?;
                startup::serve(config).await
            }
        }
    });
    match result {
        Ok(()) => exit,
        Err(err) => {
            eprintln!("mailferry: {err:#}");
            ExitCode::FAILURE
        }
    }
}
