//! The directory store: artifacts as files under a root directory, for local runs and tests.
//! Key `runs/r1/partner/creates.json` is the file `{root}/runs/r1/partner/creates.json`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{ArtifactStore, StoreError, validate_key, validate_prefix};

/// Artifacts as files under `root`. The root and any folders are created on the first write;
/// a root that does not exist yet simply holds no artifacts.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of a key that [`validate_key`] accepted, so it stays under the root.
    fn path_of(&self, key: &str) -> PathBuf {
        key.split('/')
            .fold(self.root.clone(), |path, segment| path.join(segment))
    }
}

#[async_trait::async_trait]
impl ArtifactStore for DirStore {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        let path = self.path_of(key);
        blocking(path.clone(), move || read_file(&path)).await
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        validate_key(key)?;
        let path = self.path_of(key);
        blocking(path.clone(), move || write_atomically(&path, &body)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(root.clone(), move || list_keys(&root, &prefix)).await
    }

    async fn modified(
        &self,
        key: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        validate_key(key)?;
        let path = self.path_of(key);
        blocking(path.clone(), move || match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => meta
                .modified()
                .map(|t| Some(t.into()))
                .map_err(|err| StoreError::io("read the time of", &path, err)),
            Ok(_) => Ok(None),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(StoreError::io("read the time of", &path, err)),
        })
        .await
    }

    async fn touch(&self, key: &str) -> Result<bool, StoreError> {
        validate_key(key)?;
        let path = self.path_of(key);
        blocking(path.clone(), move || {
            match fs::OpenOptions::new().append(true).open(&path) {
                Ok(file) => file
                    .set_modified(std::time::SystemTime::now())
                    .map(|()| true)
                    .map_err(|err| StoreError::io("set the time of", &path, err)),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::NotFound
                            | io::ErrorKind::NotADirectory
                            | io::ErrorKind::IsADirectory
                    ) =>
                {
                    Ok(false)
                }
                Err(err) => Err(StoreError::io("set the time of", &path, err)),
            }
        })
        .await
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// Runs blocking filesystem work on `path` off the async worker threads.
async fn blocking<T: Send + 'static>(
    path: PathBuf,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only happens while the runtime shuts down.
        Err(err) => Err(StoreError::io(
            "access",
            path,
            io::Error::new(io::ErrorKind::Interrupted, err),
        )),
    }
}

fn read_file(path: &Path) -> Result<Option<Bytes>, StoreError> {
    match fs::read(path) {
        Ok(body) => Ok(Some(Bytes::from(body))),
        // A folder where the file would be, or a file where a folder would be, means no object
        // has this key, just as S3 would answer NoSuchKey.
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::IsADirectory
            ) =>
        {
            Ok(None)
        }
        Err(err) => Err(StoreError::io("read", path, err)),
    }
}

/// Writes a complete, fsynced temporary file beside the target and renames it over the target,
/// so a reader (or a crash) sees the old content or the new, never a truncated file. The
/// temporary file's name starts with '.', which no key may, so it never shows up in a listing,
/// and `NamedTempFile` deletes it on every early return.
fn write_atomically(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let parent = path
        .parent()
        .expect("a validated key has a file name below the root");
    fs::create_dir_all(parent).map_err(|err| StoreError::io("create directory", parent, err))?;

    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-").suffix(".part");
    // NamedTempFile defaults to 0600; artifacts should get the same mode as any file the user
    // creates (0666 less the umask) so other local tools can read them.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder
        .tempfile_in(parent)
        .map_err(|err| StoreError::io("create temporary file in", parent, err))?;
    temp.write_all(body)
        .map_err(|err| StoreError::io("write", temp.path(), err))?;
    temp.as_file()
        .sync_all()
        .map_err(|err| StoreError::io("sync", temp.path(), err))?;
    temp.persist(path)
        .map_err(|err| StoreError::io("replace", path, err.error))?;
    sync_directory(parent)
}

/// Makes the rename itself durable: without syncing the directory, a crash can lose the new
/// directory entry even though the file's data was synced.
fn sync_directory(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|handle| handle.sync_all())
            .map_err(|err| StoreError::io("sync directory", dir, err))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn list_keys(root: &Path, prefix: &str) -> Result<Vec<String>, StoreError> {
    // Start in the deepest folder the prefix names completely, so listing one run does not
    // walk every run.
    let start_key = prefix.rsplit_once('/').map_or("", |(folder, _)| folder);
    let start_dir = start_key
        .split('/')
        .filter(|segment| !segment.is_empty())
        .fold(root.to_path_buf(), |path, segment| path.join(segment));

    let mut keys = Vec::new();
    let mut pending = vec![(start_dir, start_key.to_owned())];
    while let Some((dir, dir_key)) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                continue;
            }
            Err(err) => return Err(StoreError::io("list", dir, err)),
        };
        for entry in entries {
            let entry = entry.map_err(|err| StoreError::io("list", &dir, err))?;
            // Names that are not valid keys (temporary files, hidden files, anything not UTF-8)
            // cannot be read through the store, so they are not artifacts.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let key = if dir_key.is_empty() {
                name
            } else {
                format!("{dir_key}/{name}")
            };
            if validate_key(&key).is_err() {
                continue;
            }
            let file_type = entry
                .file_type()
                .map_err(|err| StoreError::io("inspect", entry.path(), err))?;
            if file_type.is_dir() {
                let folder = format!("{key}/");
                if folder.starts_with(prefix) || prefix.starts_with(&folder) {
                    pending.push((entry.path(), key));
                }
            } else if key.starts_with(prefix) && is_file(&entry.path(), file_type) {
                keys.push(key);
            }
        }
    }
    keys.sort_unstable();
    Ok(keys)
}

/// Regular files, and symlinks to regular files. Symlinked folders are not followed, so a
/// link cycle cannot make a listing loop.
fn is_file(path: &Path, file_type: fs::FileType) -> bool {
    file_type.is_file()
        || (file_type.is_symlink() && fs::metadata(path).is_ok_and(|meta| meta.is_file()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use serde::{Deserialize, Serialize, Serializer};

    use super::*;
    use crate::store::{read_artifact, read_json, read_json_opt, write_json};

    fn store() -> (tempfile::TempDir, DirStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().join("artifacts"));
        (dir, store)
    }

    /// Every file under `dir`, relative, for checking what a write left behind.
    fn files_under(dir: &Path) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    #[tokio::test]
    async fn put_then_get_returns_the_same_bytes_and_creates_folders() {
        let (_tmp, store) = store();
        let body = Bytes::from_static(b"{\"accounts\":[]}");
        store
            .put("runs/r1/partner/creates.json", body.clone())
            .await
            .unwrap();
        assert_eq!(
            store.get("runs/r1/partner/creates.json").await.unwrap(),
            Some(body)
        );
        assert_eq!(
            fs::read(store.root().join("runs/r1/partner/creates.json")).unwrap(),
            b"{\"accounts\":[]}"
        );
        store
            .put("runs/r1/partner/creates.json", Bytes::from_static(b"[]"))
            .await
            .unwrap();
        assert_eq!(
            store.get("runs/r1/partner/creates.json").await.unwrap(),
            Some(Bytes::from_static(b"[]"))
        );
    }

    #[tokio::test]
    async fn absent_objects_read_as_none() {
        let (_tmp, store) = store();
        // The root does not exist yet.
        assert_eq!(store.get("runs/r1/summary.json").await.unwrap(), None);
        store
            .put("runs/r1/users/creates.json", Bytes::from_static(b"[]"))
            .await
            .unwrap();
        assert_eq!(store.get("runs/r1/summary.json").await.unwrap(), None);
        // A folder is not an object, and nothing lives below a file.
        assert_eq!(store.get("runs/r1/users").await.unwrap(), None);
        assert_eq!(
            store.get("runs/r1/users/creates.json/x").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn invalid_keys_are_rejected_before_touching_the_filesystem() {
        let (tmp, store) = store();
        for key in [
            "../escaped.json",
            "/abs.json",
            "runs/../../escaped.json",
            "",
        ] {
            assert!(matches!(
                store.put(key, Bytes::from_static(b"x")).await,
                Err(StoreError::InvalidKey { .. })
            ));
            assert!(matches!(
                store.get(key).await,
                Err(StoreError::InvalidKey { .. })
            ));
        }
        assert!(matches!(
            store.list("../").await,
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(files_under(tmp.path()).is_empty());
    }

    #[tokio::test]
    async fn list_is_recursive_sorted_and_prefix_filtered() {
        let (_tmp, store) = store();
        for key in [
            "runs/r2/summary.json",
            "runs/r1/users/sync_result.json",
            "runs/r1/zendesk_global.json",
            "runs/r1/partner/creates.json",
            "runs/r10/summary.json",
            "config/overrides.yaml",
        ] {
            store.put(key, Bytes::from_static(b"{}")).await.unwrap();
        }
        assert_eq!(
            store.list("runs/r1/").await.unwrap(),
            [
                "runs/r1/partner/creates.json",
                "runs/r1/users/sync_result.json",
                "runs/r1/zendesk_global.json",
            ]
        );
        // A string prefix, as on S3: `runs/r1` also matches `runs/r10/…`.
        assert_eq!(
            store.list("runs/r1").await.unwrap(),
            [
                "runs/r1/partner/creates.json",
                "runs/r1/users/sync_result.json",
                "runs/r1/zendesk_global.json",
                "runs/r10/summary.json",
            ]
        );
        assert_eq!(
            store.list("runs/r1/z").await.unwrap(),
            ["runs/r1/zendesk_global.json"]
        );
        assert_eq!(store.list("").await.unwrap().len(), 6);
        assert_eq!(store.list("").await.unwrap()[0], "config/overrides.yaml");
        assert!(store.list("runs/r3/").await.unwrap().is_empty());
        assert!(
            store
                .list("runs/r1/summary.json/")
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn list_of_a_missing_root_is_empty() {
        let (_tmp, store) = store();
        assert!(store.list("").await.unwrap().is_empty());
        assert!(store.list("runs/r1/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn list_skips_files_that_are_not_valid_keys() {
        let (_tmp, store) = store();
        store
            .put("runs/r1/summary.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let run_dir = store.root().join("runs/r1");
        // What an interrupted write or another tool can leave behind.
        fs::write(run_dir.join(".tmp-abc.part"), b"partial").unwrap();
        fs::write(run_dir.join("notes about run.txt"), b"x").unwrap();
        fs::create_dir_all(store.root().join(".git/objects")).unwrap();
        fs::write(store.root().join(".git/objects/x"), b"x").unwrap();
        assert_eq!(store.list("").await.unwrap(), ["runs/r1/summary.json"]);
    }

    #[tokio::test]
    async fn writes_leave_no_temporary_files() {
        let (_tmp, store) = store();
        for round in 0..5 {
            for name in ["a.json", "b.json", "nested/c.json"] {
                let body = format!("{{\"round\":{round}}}");
                store
                    .put(&format!("runs/r1/{name}"), Bytes::from(body))
                    .await
                    .unwrap();
            }
        }
        assert_eq!(
            files_under(store.root()),
            ["runs/r1/a.json", "runs/r1/b.json", "runs/r1/nested/c.json"]
        );
    }

    #[tokio::test]
    async fn a_failed_replace_leaves_no_temporary_file() {
        let (_tmp, store) = store();
        // A non-empty folder where the file should go makes the final rename fail after the
        // temporary file was written.
        store
            .put(
                "runs/r1/summary.json/inner.json",
                Bytes::from_static(b"old"),
            )
            .await
            .unwrap();
        let err = store
            .put("runs/r1/summary.json", Bytes::from_static(b"new"))
            .await
            .unwrap_err();
        match &err {
            StoreError::Io {
                operation, path, ..
            } => {
                assert_eq!(*operation, "replace");
                assert!(path.ends_with("runs/r1/summary.json"), "{}", path.display());
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(!err.is_retryable());
        assert_eq!(
            files_under(store.root()),
            ["runs/r1/summary.json/inner.json"]
        );
        assert_eq!(
            store.get("runs/r1/summary.json/inner.json").await.unwrap(),
            Some(Bytes::from_static(b"old"))
        );
    }

    /// Serializes its first field, then fails: a writer that streamed JSON straight into the
    /// target file would already have truncated it.
    struct FailsHalfway;

    impl Serialize for FailsHalfway {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{Error, SerializeStruct};
            let mut fields = serializer.serialize_struct("FailsHalfway", 2)?;
            fields.serialize_field("written", &"a lot of data")?;
            drop(fields);
            Err(S::Error::custom("the clock went backwards"))
        }
    }

    #[tokio::test]
    async fn a_value_that_fails_to_encode_keeps_the_old_artifact() {
        let (_tmp, store) = store();
        write_json(&store, "runs/r1/summary.json", &vec![1, 2, 3])
            .await
            .unwrap();
        match write_json(&store, "runs/r1/summary.json", &FailsHalfway).await {
            Err(StoreError::Unencodable { key, message }) => {
                assert_eq!(key, "runs/r1/summary.json");
                assert!(message.contains("the clock went backwards"), "{message}");
            }
            other => panic!("expected Unencodable, got {other:?}"),
        }
        let kept: Vec<u32> = read_json(&store, "runs/r1/summary.json").await.unwrap();
        assert_eq!(kept, [1, 2, 3]);
        assert_eq!(files_under(store.root()), ["runs/r1/summary.json"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_never_see_a_partly_written_artifact() {
        let (_tmp, store) = store();
        let store = Arc::new(store);
        // Large enough that a non-atomic write (truncate, then write) is observable mid-way.
        let old = Bytes::from(vec![b'a'; 4 << 20]);
        let new = Bytes::from(vec![b'b'; 4 << 20]);
        store.put("runs/r1/big.json", old.clone()).await.unwrap();

        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (store, done, old, new) = (store.clone(), done.clone(), old.clone(), new.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let seen = store.get("runs/r1/big.json").await.unwrap().unwrap();
                    assert!(
                        seen == old || seen == new,
                        "read {} bytes of mixed content",
                        seen.len()
                    );
                    reads += 1;
                }
                reads
            })
        };
        for round in 0..20 {
            let body = if round % 2 == 0 { &new } else { &old };
            store.put("runs/r1/big.json", body.clone()).await.unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let reads = reader.await.unwrap();
        assert!(reads > 0);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Org {
        id: u64,
        name: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OrgList {
        instance: String,
        orgs: Vec<Org>,
    }

    async fn put_text(store: &DirStore, key: &str, text: &str) {
        store.put(key, Bytes::from(text.to_owned())).await.unwrap();
    }

    async fn invalid_artifact(store: &DirStore, key: &str) -> (String, String) {
        match read_json::<OrgList>(store, key).await {
            Err(StoreError::InvalidArtifact {
                key: reported,
                path,
                message,
            }) => {
                assert_eq!(reported, key);
                (path, message)
            }
            other => panic!("expected InvalidArtifact for {key}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn json_round_trip() {
        let (_tmp, store) = store();
        let value = OrgList {
            instance: "global".into(),
            orgs: vec![Org {
                id: 7,
                name: "Acme".into(),
            }],
        };
        write_json(&store, "runs/r1/zendesk_global.json", &value)
            .await
            .unwrap();
        let back: OrgList = read_json(&store, "runs/r1/zendesk_global.json")
            .await
            .unwrap();
        assert_eq!(back, value);
        let maybe: Option<OrgList> = read_json_opt(&store, "runs/r1/zendesk_global.json")
            .await
            .unwrap();
        assert_eq!(maybe, Some(value));
    }

    #[tokio::test]
    async fn a_compressed_key_holds_gzip_and_reads_back_as_its_json() {
        let (_tmp, store) = store();
        let key = "state/zendesk_global_orgs.json.gz";
        let value = OrgList {
            instance: "global".into(),
            orgs: (0..2_000)
                .map(|id| Org {
                    id,
                    name: format!("Org {id}"),
                })
                .collect(),
        };
        write_json(&store, key, &value).await.unwrap();
        let json = serde_json::to_vec(&value).unwrap();
        let stored = store.get(key).await.unwrap().unwrap();
        assert!(stored.starts_with(&[0x1f, 0x8b]), "gzip");
        assert!(
            stored.len() * 3 < json.len(),
            "{} of {}",
            stored.len(),
            json.len()
        );
        assert_eq!(read_artifact(&store, key).await.unwrap().unwrap(), json);
        let back: OrgList = read_json(&store, key).await.unwrap();
        assert_eq!(back, value);

        put_text(&store, key, "{\"instance\": \"global\", \"orgs\": []}").await;
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, ".");
        assert!(message.starts_with("not a readable gzip file"), "{message}");
    }

    #[tokio::test]
    async fn a_missing_artifact_is_missing_not_invalid() {
        let (_tmp, store) = store();
        match read_json::<OrgList>(&store, "runs/r1/zendesk_usgov.json").await {
            Err(err @ StoreError::Missing { .. }) => {
                assert_eq!(
                    err.to_string(),
                    "artifact runs/r1/zendesk_usgov.json is missing"
                );
                assert!(!err.is_retryable());
            }
            other => panic!("expected Missing, got {other:?}"),
        }
        let none: Option<OrgList> = read_json_opt(&store, "runs/r1/zendesk_usgov.json")
            .await
            .unwrap();
        assert_eq!(none, None);
    }

    #[tokio::test]
    async fn a_type_error_deep_in_the_artifact_names_its_json_path() {
        let (_tmp, store) = store();
        let key = "runs/r1/zendesk_global.json";
        put_text(
            &store,
            key,
            r#"{"instance":"global","orgs":[
                {"id":1,"name":"a"},{"id":2,"name":"b"},{"id":3,"name":"c"},
                {"id":"four","name":"d"}]}"#,
        )
        .await;
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, "orgs[3].id");
        assert!(
            message.starts_with(
                "does not match the expected structure: invalid type: string \"four\", expected u64"
            ),
            "{message}"
        );
        assert!(message.contains("line 3"), "{message}");

        put_text(&store, key, r#"{"instance":"global","orgs":[{"id":1}]}"#).await;
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, "orgs[0]");
        assert!(message.contains("missing field `name`"), "{message}");

        let err = read_json::<OrgList>(&store, key).await.unwrap_err();
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .starts_with("artifact runs/r1/zendesk_global.json is invalid at orgs[0]: "),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_syntax_error_names_where_parsing_stopped() {
        let (_tmp, store) = store();
        let key = "runs/r1/zendesk_global.json";
        put_text(
            &store,
            key,
            r#"{"instance":"global","orgs":[{"id":1,"name":"a"},{"id":2,"name":nul}]}"#,
        )
        .await;
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, "orgs[1].name");
        assert!(message.starts_with("not valid JSON: "), "{message}");
        assert!(message.contains("line 1 column 68"), "{message}");

        // Failing between fields, the path ends in `?`: inside orgs[1], before any next key.
        put_text(
            &store,
            key,
            r#"{"instance":"global","orgs":[{"id":1,"name":"a"},{"id":2,"name":"b",}]}"#,
        )
        .await;
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, "orgs[1].?");
        assert!(message.contains("trailing comma"), "{message}");

        // Cut off mid-write, as a non-atomic writer might leave it.
        put_text(&store, key, r#"{"instance":"global","orgs":[{"id":1,"#).await;
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, "orgs[0].?");
        assert!(
            message.starts_with("not valid JSON (it ends early): "),
            "{message}"
        );

        put_text(&store, key, "").await;
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, ".");
        assert!(
            message.starts_with("not valid JSON (it ends early): "),
            "{message}"
        );

        put_text(&store, key, r#"{"instance":"global","orgs":[]} {"#).await;
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, ".");
        assert!(message.contains("content after the document"), "{message}");

        // Not UTF-8 inside a string.
        store
            .put(
                key,
                Bytes::from_static(b"{\"instance\":\"gl\xffobal\",\"orgs\":[]}"),
            )
            .await
            .unwrap();
        let (path, message) = invalid_artifact(&store, key).await;
        assert_eq!(path, "instance");
        assert!(message.starts_with("not valid JSON: "), "{message}");
    }

    #[test]
    fn describe_names_the_directory() {
        assert_eq!(DirStore::new("/var/zdsync").describe(), "/var/zdsync");
    }
}
