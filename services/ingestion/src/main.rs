fn main() -> std::process::ExitCode {
    peermesh_common::server::main(
        peermesh_ingestion::SERVICE,
        peermesh_ingestion::Settings::from_env,
        peermesh_ingestion::build,
    )
}
