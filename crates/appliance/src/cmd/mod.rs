//! One module per subcommand.

pub mod bench;
pub mod check_config;
pub mod discover;
pub mod serve;
