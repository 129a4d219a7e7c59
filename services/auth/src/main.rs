fn main() -> std::process::ExitCode {
    peermesh_common::server::main(
        peermesh_auth::SERVICE,
        peermesh_auth::Settings::from_env,
        peermesh_auth::build,
    )
}
