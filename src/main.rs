fn main() -> std::process::ExitCode {
    sessiond::cli::run()
}
