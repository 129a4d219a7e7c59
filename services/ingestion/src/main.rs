fn main() -> std::process::ExitCode {
    // A parser child (see `sandbox`): nothing else of the service starts.
    if std::env::args().nth(1).as_deref() == Some(peermesh_ingestion::sandbox::CHILD_ARG) {
        return peermesh_ingestion::sandbox::child_main();
    }
    peermesh_common::server::main(
        peermesh_ingestion::SERVICE,
        peermesh_ingestion::Settings::from_env,
        peermesh_ingestion::build,
    )
}
