fn main() -> std::process::ExitCode {
    peermesh_common::server::main(
        peermesh_content::SERVICE,
        peermesh_content::Settings::from_env,
        peermesh_content::build,
    )
}
