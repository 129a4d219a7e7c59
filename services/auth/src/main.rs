use clap::Parser;
use peermesh_auth::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let basic = match Cli::parse().command {
        Some(Command::Basic(basic)) => Some(basic),
        Some(command) => {
            return peermesh_common::server::print_outcome(peermesh_auth::cli::run(command))
        }
        None => None,
    };
    peermesh_common::server::main(
        peermesh_auth::SERVICE,
        basic,
        peermesh_auth::build,
        |settings| {
            peermesh_db::migrate_only(
                &settings.server,
                peermesh_auth::DEFAULT_DATABASE_URL,
                &peermesh_auth::MIGRATIONS,
            )
            .map_err(|e| e.to_string())
        },
    )
}
