use super::*;
use std::collections::HashSet;

fn store(dir: &tempfile::TempDir) -> FileStore {
    FileStore::new(&dir.path().join(super::FILES_DIR), FileLimits { max_file_bytes: 1000, max_message_bytes: 1500 })
}

/// Every regular file under the files folder (stored and partial).
fn files_on_disk(dir: &tempfile::TempDir) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let root = dir.path().join(FILES_DIR);
    for folder in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(folder.path()).into_iter().flatten().flatten() {
            found.push(file.path());
        }
    }
    found
}

fn inline(name: &str, data: &[u8]) -> AttachmentIn {
    AttachmentIn {
        name: name.to_owned(),
        media_type: "text/plain".to_owned(),
        data: data.to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn equal_bytes_are_stored_once_under_their_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let files = store(&dir);
    let first = files.put(b"hello").await.unwrap();
    let second = files.put(b"hello").await.unwrap();
    assert_eq!(first.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    assert!(!first.existed && second.existed);
    assert_eq!(files_on_disk(&dir), vec![files.path(&first.sha256)]);
    assert_eq!(files.read(&first.sha256).await.unwrap(), b"hello");
}

#[tokio::test]
async fn an_over_limit_file_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let files = store(&dir);
    let error = files.upload(Some(1001)).await.unwrap_err();
    assert!(error.to_string().contains("over the limit of 1000 bytes per attachment"), "{error}");
    let mut upload = files.upload(None).await.unwrap();
    upload.write(&[0; 600]).await.unwrap();
    let error = upload.write(&[0; 600]).await.unwrap_err();
    assert!(matches!(error, FileError::TooLarge(_)), "{error}");
    drop(upload);
    assert!(files_on_disk(&dir).is_empty());
}

#[tokio::test]
async fn a_refused_message_stores_none_of_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = store(&dir);
    let too_much = vec![inline("a.txt", &[1; 900]), inline("b.txt", &[2; 900])];
    let error = files.accept(too_much).await.unwrap_err();
    assert!(
        error.to_string().contains("over the limit of 1.5 KiB per message")
            || error.to_string().contains("per message"),
        "{error}"
    );
    let bad_name = vec![inline("ok.txt", b"x"), inline("../etc", b"y")];
    let error = files.accept(bad_name).await.unwrap_err();
    assert!(error.to_string().contains("may not contain"), "{error}");
    let unknown = AttachmentIn { name: "x".into(), sha256: "ab".repeat(32), ..Default::default() };
    let error = files.accept(vec![unknown]).await.unwrap_err();
    assert!(error.to_string().contains("was not uploaded"), "{error}");
    assert!(files_on_disk(&dir).is_empty());
}

#[tokio::test]
async fn accepted_attachments_name_their_stored_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = store(&dir);
    let uploaded = files.put(b"uploaded").await.unwrap();
    let by_reference = AttachmentIn { name: "u.bin".into(), sha256: uploaded.sha256.clone(), ..Default::default() };
    let accepted = files.accept(vec![inline("a.txt", b"inline"), by_reference]).await.unwrap();
    assert_eq!(accepted[0].size, 6);
    assert_eq!(files.read(&accepted[0].sha256).await.unwrap(), b"inline");
    assert_eq!((accepted[1].size, accepted[1].media_type.as_str()), (8, "application/octet-stream"));
}

#[tokio::test]
async fn garbage_collection_removes_old_unreferenced_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let files = store(&dir);
    let kept = files.put(b"referenced").await.unwrap();
    let orphan = files.put(b"orphan").await.unwrap();
    let referenced: HashSet<String> = [kept.sha256.clone()].into();
    // Within the grace period even an unreferenced file stays (its message may be on its way).
    let none = files.collect_garbage(&referenced, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(none, Collected::default());
    let collected = files.collect_garbage(&referenced, Duration::ZERO).await.unwrap();
    assert_eq!(collected, Collected { files: 1, bytes: 6 });
    assert_eq!(files_on_disk(&dir), vec![files.path(&kept.sha256)]);
    assert!(matches!(files.read(&orphan.sha256).await, Err(FileError::NotFound(_))));
}

#[test]
fn names_and_media_types_are_checked() {
    assert!(check_name("chart.png").is_ok());
    for bad in ["", ".", "..", "a/b", "a\\b", "tab\there"] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
    assert_eq!(check_media_type("").unwrap(), "application/octet-stream");
    assert_eq!(check_media_type("Image/PNG").unwrap(), "image/png");
    assert!(check_media_type("text/plain; charset=utf-8").is_ok());
    assert!(check_media_type("png").is_err());
}
