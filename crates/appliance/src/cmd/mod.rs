//! One module per subcommand.

pub mod bench;
pub mod discover;
pub mod serve;
