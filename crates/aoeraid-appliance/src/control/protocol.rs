//! Wire format of the control socket: one JSON object per line each way.
//!
//! Request:  `{"cmd":"fail","array":"data","member":"e0.1"}`
//! Response: `{"ok":true,"message":"e0.1 marked faulty in data"}`
//!           `{"ok":true,"status":{...}}`
//!           `{"ok":false,"error":"no array named dta"}`

use super::status::Status;
use serde::{Deserialize, Serialize};

/// Longest request or response line accepted (a status of hundreds of
/// members fits with room to spare).
pub const MAX_LINE: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Status,
    /// Mark an active member faulty.
    Fail {
        array: String,
        member: String,
    },
    /// Take a faulty or spare member out of the array.
    Remove {
        array: String,
        member: String,
    },
    /// Add a device as a spare (or as a replacement if the array is degraded).
    /// `force`: write over a superblock or spare label it carries (absent from
    /// the line when false, so older daemons still understand plain adds).
    Add {
        array: String,
        member: String,
        #[serde(default, skip_serializing_if = "is_false")]
        force: bool,
    },
    /// Return a member that dropped out; resync only what changed.
    ReAdd {
        array: String,
        member: String,
    },
    SpareAdd {
        group: String,
        member: String,
        #[serde(default, skip_serializing_if = "is_false")]
        force: bool,
    },
    SpareRemove {
        group: String,
        member: String,
    },
    Scrub {
        array: String,
        #[serde(default)]
        repair: bool,
    },
    /// Append an array to a volume online.
    Grow {
        volume: String,
        add_array: String,
    },
    /// Change rebuild pacing; None leaves that bound as it is.
    RebuildRate {
        array: String,
        #[serde(default)]
        min_bytes_per_second: Option<u64>,
        #[serde(default)]
        max_bytes_per_second: Option<u64>,
    },
    /// Re-read the config file and apply what can change live.
    Reload,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl Response {
    pub fn done(message: impl Into<String>) -> Self {
        Response {
            ok: true,
            message: Some(message.into()),
            error: None,
            status: None,
        }
    }

    pub fn error(error: impl Into<String>) -> Self {
        Response {
            ok: false,
            message: None,
            error: Some(error.into()),
            status: None,
        }
    }

    pub fn status(status: Status) -> Self {
        Response {
            ok: true,
            message: None,
            error: None,
            status: Some(status),
        }
    }
}
