fn main() -> std::process::ExitCode {
    aoeraid_appliance::main()
}
