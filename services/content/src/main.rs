use clap::Parser;
use peermesh_common::server::BasicCommand;

/// The PeerMesh content service: items, tags, the knowledge graph, search.
#[derive(Parser)]
#[command(name = "peermesh-content", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<BasicCommand>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    peermesh_common::server::main(
        peermesh_content::SERVICE,
        cli.command,
        peermesh_content::build,
        |settings| {
            peermesh_db::migrate_only(
                &settings.server,
                peermesh_content::DEFAULT_DATABASE_URL,
                &peermesh_content::MIGRATIONS,
            )
            .map_err(|e| e.to_string())
        },
    )
}
