//! One module per subcommand.

pub mod bench;
pub mod check_config;
pub mod connect;
pub mod create;
pub mod discover;
pub mod examine;
pub mod grow;
pub mod manual;
pub mod member;
pub mod rebuild_rate;
pub mod run;
pub mod scrub;
pub mod serve;
pub mod spare;
pub mod status;
pub mod test_event;
