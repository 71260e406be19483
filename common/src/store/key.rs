//! Artifact keys and run prefixes.
//!
//! A key is a relative, `/`-separated name such as `runs/{run_id}/salesforce_accounts.json`.
//! The alphabet is deliberately narrow (`A-Z a-z 0-9 . _ -` per segment, no segment starting
//! with `.`) so that the same key means the same object on S3 and on a local filesystem: it
//! cannot climb out of its prefix (`..`), is never absolute, never collides with the directory
//! store's hidden temporary files, and needs no URL or path escaping on either backend.

use super::StoreError;

/// S3's limit on an object key, applied to every backend so a key that works locally also
/// works in the cloud.
pub const MAX_KEY_BYTES: usize = 1024;

/// The usual filesystem limit on one path component.
const MAX_SEGMENT_BYTES: usize = 255;

/// Step Functions limits an execution name to 80 characters.
const MAX_RUN_ID_CHARS: usize = 80;

/// The folder every run's artifacts live under (SPEC §2).
pub const RUNS_PREFIX: &str = "runs/";

/// Checks that `key` names an object: relative, non-empty segments of the key alphabet.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    key_problem(key).map_or(Ok(()), |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    })
}

/// Checks a listing prefix: empty (everything), a folder (`runs/abc/`), or the start of a key
/// (`runs/ab`). It obeys the key rules, so it cannot reach outside the store either.
pub fn validate_prefix(prefix: &str) -> Result<(), StoreError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    let problem = if body.is_empty() {
        Some("is only '/'; use \"\" to list everything".to_owned())
    } else {
        key_problem(body)
    };
    problem.map_or(Ok(()), |reason| {
        Err(StoreError::InvalidKey {
            key: prefix.to_owned(),
            reason,
        })
    })
}

fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("is empty".to_owned());
    }
    if key.starts_with('/') {
        return Some("starts with '/'; keys are relative to the store".to_owned());
    }
    if key.ends_with('/') {
        return Some("ends with '/'; a key names an object, not a folder".to_owned());
    }
    if key.len() > MAX_KEY_BYTES {
        return Some(format!(
            "is {} bytes long; the limit is {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    key.split('/').find_map(segment_problem)
}

fn segment_problem(segment: &str) -> Option<String> {
    match segment {
        "" => return Some("has an empty segment ('//')".to_owned()),
        "." | ".." => {
            return Some(format!(
                "has a {segment:?} segment; keys may not navigate out of their prefix"
            ));
        }
        _ => {}
    }
    if segment.starts_with('.') {
        return Some(format!(
            "segment {segment:?} starts with '.', which is reserved for the store's temporary files"
        ));
    }
    if let Some(ch) = segment
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "contains {ch:?}; only A-Z, a-z, 0-9, '.', '_', '-' and '/' are allowed"
        ));
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Some(format!(
            "has a segment of {} bytes; the limit is {MAX_SEGMENT_BYTES}",
            segment.len()
        ));
    }
    None
}

/// Checks that `run_id` is an execution name this project accepts: 1 to 80 characters of
/// `A-Z a-z 0-9 _ -`. Step Functions itself allows more, but these are the names the schedule
/// and the CLI generate, and they are safe as one key segment on every backend.
pub fn validate_run_id(run_id: &str) -> Result<(), StoreError> {
    let reason = if run_id.is_empty() {
        Some("is empty".to_owned())
    } else if run_id.chars().count() > MAX_RUN_ID_CHARS {
        Some(format!(
            "has {} characters; the limit is {MAX_RUN_ID_CHARS}",
            run_id.chars().count()
        ))
    } else {
        run_id
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
            .map(|(position, ch)| {
                format!(
                    "has {ch:?} at position {position}; only A-Z, a-z, 0-9, '_' and '-' are allowed"
                )
            })
    };
    reason.map_or(Ok(()), |reason| {
        Err(StoreError::InvalidRunId {
            run_id: run_id.to_owned(),
            reason,
        })
    })
}

/// The keys of one run: everything it reads and writes lives under `runs/{run_id}/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunKeys {
    run_id: String,
    prefix: String,
}

impl RunKeys {
    /// Validates the run id (see [`validate_run_id`]).
    pub fn new(run_id: &str) -> Result<Self, StoreError> {
        validate_run_id(run_id)?;
        Ok(RunKeys {
            run_id: run_id.to_owned(),
            prefix: format!("{RUNS_PREFIX}{run_id}/"),
        })
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// `runs/{run_id}/`, for listing the run's artifacts.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of artifact `name` (relative to the run, e.g. `partner/creates.json`). The name
    /// obeys the key rules, so the result can never leave the run's prefix.
    pub fn key(&self, name: &str) -> Result<String, StoreError> {
        validate_key(name).map_err(|err| match err {
            StoreError::InvalidKey { reason, .. } => StoreError::InvalidKey {
                key: name.to_owned(),
                reason: format!("artifact name {reason}"),
            },
            other => other,
        })?;
        let key = format!("{}{name}", self.prefix);
        validate_key(&key)?;
        Ok(key)
    }
}

/// `runs/{run_id}/{name}`, validating both parts. Shorthand for `RunKeys::new(run_id)?.key(name)`.
pub fn artifact_key(run_id: &str, name: &str) -> Result<String, StoreError> {
    RunKeys::new(run_id)?.key(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_reason(key: &str) -> String {
        match validate_key(key) {
            Err(StoreError::InvalidKey { key: k, reason }) => {
                assert_eq!(k, key);
                reason
            }
            other => panic!("{key:?} should be an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_artifact_names_of_the_spec() {
        for key in [
            "runs/r1/salesforce_accounts.json",
            "runs/manual-2026-11-23_01/partner/sync_result.json",
            "runs/r1/users/zendesk_users.json",
            "config/overrides.yaml",
            "latest_run.json",
            "runs/r1/report.md",
            "a",
            "a.b.c",
        ] {
            validate_key(key).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        }
    }

    #[test]
    fn rejects_keys_that_escape_or_are_not_relative() {
        assert!(key_reason("").contains("empty"));
        assert!(key_reason("/etc/passwd").contains("starts with '/'"));
        assert!(key_reason("runs/../secrets.json").contains("\"..\""));
        assert!(key_reason("..").contains("\"..\""));
        assert!(key_reason("runs/./a.json").contains("\".\""));
        assert!(key_reason("runs//a.json").contains("empty segment"));
        assert!(key_reason("runs/a/").contains("ends with '/'"));
        assert!(key_reason("runs/.tmp-x").contains("starts with '.'"));
        assert!(key_reason("runs\\a.json").contains("'\\\\'"));
        assert!(key_reason("runs/a b.json").contains("' '"));
        assert!(key_reason("runs/é.json").contains("'é'"));
        assert!(key_reason(&"a".repeat(256)).contains("segment of 256 bytes"));
        let long = ["abcdefghij"; 100].join("/");
        assert!(key_reason(&long).contains("the limit is 1024"));
    }

    #[test]
    fn prefixes_may_be_empty_folders_or_partial_keys() {
        for prefix in ["", "runs/", "runs/r1/", "runs/r", "runs/r1/partner/"] {
            validate_prefix(prefix).unwrap_or_else(|e| panic!("{prefix:?}: {e}"));
        }
        for prefix in ["/", "/runs/", "runs//", "../", "runs/../x", "runs/.hidden"] {
            assert!(
                matches!(validate_prefix(prefix), Err(StoreError::InvalidKey { key, .. }) if key == prefix),
                "{prefix:?} should be rejected"
            );
        }
    }

    #[test]
    fn run_ids_are_step_functions_execution_names() {
        for id in [
            "a",
            "scheduled-2026-11-23T10-00_abc",
            &"x".repeat(MAX_RUN_ID_CHARS),
        ] {
            validate_run_id(id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
        }
        let reason = |id: &str| match validate_run_id(id) {
            Err(StoreError::InvalidRunId { run_id, reason }) => {
                assert_eq!(run_id, id);
                reason
            }
            other => panic!("{id:?} should be rejected, got {other:?}"),
        };
        assert_eq!(reason(""), "is empty");
        assert_eq!(
            reason(&"x".repeat(81)),
            "has 81 characters; the limit is 80"
        );
        assert!(reason("a/b").starts_with("has '/' at position 1"));
        assert!(reason("..").starts_with("has '.' at position 0"));
        assert!(reason("run 1").starts_with("has ' ' at position 3"));
    }

    #[test]
    fn run_keys_stay_under_the_run_prefix() {
        let run = RunKeys::new("r-42").unwrap();
        assert_eq!(run.run_id(), "r-42");
        assert_eq!(run.prefix(), "runs/r-42/");
        assert_eq!(
            run.key("salesforce_accounts.json").unwrap(),
            "runs/r-42/salesforce_accounts.json"
        );
        assert_eq!(
            artifact_key("r-42", "users/creates.json").unwrap(),
            "runs/r-42/users/creates.json"
        );
        for name in ["../r-43/summary.json", "/summary.json", "", "users/../../x"] {
            match run.key(name) {
                Err(StoreError::InvalidKey { key, reason }) => {
                    assert_eq!(key, name);
                    assert!(reason.starts_with("artifact name "), "{reason}");
                }
                other => panic!("{name:?} should be rejected, got {other:?}"),
            }
        }
        assert!(matches!(
            artifact_key("../etc", "summary.json"),
            Err(StoreError::InvalidRunId { .. })
        ));
    }
}
