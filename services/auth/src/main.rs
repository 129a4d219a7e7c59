fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(result) = peermesh_auth::cli::run(&args) {
        return match result {
            Ok(out) => {
                println!("{out}");
                std::process::ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{err}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    peermesh_common::server::main(
        peermesh_auth::SERVICE,
        peermesh_auth::Settings::from_env,
        peermesh_auth::build,
    )
}
