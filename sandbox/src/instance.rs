//! The two Zendesk instances the emulator serves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the two Zendesk instances the sync keeps in step with Salesforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZendeskInstance {
    Global,
    Usgov,
}

impl ZendeskInstance {
    pub const ALL: [ZendeskInstance; 2] = [ZendeskInstance::Global, ZendeskInstance::Usgov];

    /// The name used in URLs, counter keys and the state dump.
    pub fn as_str(self) -> &'static str {
        match self {
            ZendeskInstance::Global => "global",
            ZendeskInstance::Usgov => "usgov",
        }
    }
}

impl fmt::Display for ZendeskInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ZendeskInstance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "global" => Ok(ZendeskInstance::Global),
            "usgov" => Ok(ZendeskInstance::Usgov),
            other => Err(format!(
                "unknown Zendesk instance {other:?} (expected global or usgov)"
            )),
        }
    }
}
