use clap::Parser;
use peermesh_ingestion::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    // A parser child (see `sandbox`): nothing else of the service starts.
    if std::env::args().nth(1).as_deref() == Some(peermesh_ingestion::sandbox::CHILD_ARG) {
        return peermesh_ingestion::sandbox::child_main();
    }
    let basic = match Cli::parse().command {
        Some(Command::Jobs(command)) => {
            return peermesh_common::server::print_outcome(peermesh_ingestion::cli::jobs(command))
        }
        Some(Command::Basic(basic)) => Some(basic),
        None => None,
    };
    peermesh_common::server::main(
        peermesh_ingestion::SERVICE,
        basic,
        peermesh_ingestion::build,
        |settings| {
            peermesh_db::migrate_only(
                &settings.server,
                peermesh_ingestion::DEFAULT_DATABASE_URL,
                &peermesh_ingestion::MIGRATIONS,
            )
            .map_err(|e| e.to_string())
        },
    )
}
