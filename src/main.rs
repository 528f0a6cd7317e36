fn main() -> std::process::ExitCode {
    labup::main()
}
