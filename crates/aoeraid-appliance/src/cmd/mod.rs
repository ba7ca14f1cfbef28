//! One module per subcommand.

pub(crate) mod bench;
pub(crate) mod check_config;
mod config_file;
pub(crate) mod connect;
pub(crate) mod create;
pub(crate) mod discover;
pub(crate) mod examine;
pub(crate) mod fence;
pub(crate) mod grow;
pub(crate) mod manual;
pub(crate) mod member;
pub(crate) mod rebuild_rate;
pub(crate) mod run;
pub(crate) mod scrub;
pub(crate) mod serve;
pub(crate) mod spare;
pub(crate) mod status;
pub(crate) mod test_event;
