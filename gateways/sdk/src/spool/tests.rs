use super::*;

fn message(id: &str, text: &str) -> Inbound {
    Inbound {
        channel_id: "C1".into(),
        message_id: id.into(),
        sender_id: "U1".into(),
        sender_name: "alice".into(),
        text: text.into(),
        files: Vec::new(),
    }
}

async fn open(config: SpoolConfig) -> (Spool, JoinHandle<()>, mpsc::UnboundedReceiver<Spooled>) {
    let (forward, forwarded) = mpsc::unbounded_channel();
    let (spool, task) = Spool::open(config, forward).await.expect("spool opens");
    (spool, task, forwarded)
}

async fn close(spool: Spool, task: JoinHandle<()>) {
    drop(spool);
    task.await.expect("spool task ends");
}

fn ids(forwarded: &mut mpsc::UnboundedReceiver<Spooled>) -> Vec<String> {
    std::iter::from_fn(|| forwarded.try_recv().ok()).map(|s| s.inbound.message_id).collect()
}

#[tokio::test]
async fn spooled_messages_survive_a_restart_in_order_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, task, mut forwarded) = open(SpoolConfig::new(dir.path())).await;
    for id in ["1", "2", "3"] {
        spool.append(message(id, "hello")).await.unwrap();
    }
    let first: Vec<Spooled> = std::iter::from_fn(|| forwarded.try_recv().ok()).collect();
    assert_eq!(first.iter().map(|s| s.inbound.message_id.as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
    spool.remove(first[0].seq);
    spool.append(message("4", "hello")).await.unwrap();
    assert_eq!(spool.stats().borrow().entries, 3);
    close(spool, task).await;

    let (spool, task, mut forwarded) = open(SpoolConfig::new(dir.path())).await;
    assert_eq!(ids(&mut forwarded), ["2", "3", "4"], "the removed one is gone, the rest come first, in order");
    assert_eq!(forwarded.try_recv().ok(), None);
    assert_eq!(spool.stats().borrow().entries, 3);
    close(spool, task).await;
}

#[tokio::test]
async fn a_message_already_spooled_is_not_spooled_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, task, mut forwarded) = open(SpoolConfig::new(dir.path())).await;
    spool.append(message("1", "hello")).await.unwrap();
    spool.append(message("1", "hello")).await.unwrap();
    assert_eq!(ids(&mut forwarded), ["1"]);
    close(spool, task).await;
}

#[tokio::test]
async fn a_full_spool_refuses_and_takes_again_once_gorpd_took_some() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig { max_entries: 2, ..SpoolConfig::new(dir.path()) };
    let (spool, task, mut forwarded) = open(config).await;
    spool.append(message("1", "a")).await.unwrap();
    spool.append(message("2", "b")).await.unwrap();
    let refused = spool.append(message("3", "c")).await.unwrap_err();
    assert_eq!(refused, SpoolError::Full("2 messages, at most 2".into()));
    assert!(spool.stats().borrow().full);
    let first = forwarded.try_recv().unwrap();
    spool.remove(first.seq);
    spool.append(message("3", "c")).await.unwrap();
    assert_eq!(ids(&mut forwarded), ["2", "3"]);
    assert_eq!(spool.stats().borrow().entries, 2);
    close(spool, task).await;
}

#[tokio::test]
async fn bytes_and_age_are_bounded_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = SpoolConfig { max_bytes: 40, ..SpoolConfig::new(dir.path().join("bytes")) };
    let (spool, task, _forwarded) = open(config).await;
    spool.append(message("1", "short")).await.unwrap();
    let error = spool.append(message("2", &"x".repeat(40))).await.unwrap_err();
    assert!(matches!(error, SpoolError::Full(ref why) if why.contains("at most 40")), "{error}");
    close(spool, task).await;

    let config = SpoolConfig { max_age: Duration::ZERO, ..SpoolConfig::new(dir.path().join("age")) };
    let (spool, task, _forwarded) = open(config).await;
    spool.append(message("1", "a")).await.unwrap();
    let error = spool.append(message("2", "b")).await.unwrap_err();
    assert!(matches!(error, SpoolError::Full(ref why) if why.contains("oldest message")), "{error}");
    close(spool, task).await;
}

#[tokio::test]
async fn a_second_process_cannot_open_a_spool_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, task, _forwarded) = open(SpoolConfig::new(dir.path())).await;
    let (forward, _rx) = mpsc::unbounded_channel();
    let error = Spool::open(SpoolConfig::new(dir.path()), forward).await.unwrap_err();
    assert!(matches!(error, SpoolError::Open(ref why) if why.contains("another gateway")), "{error}");
    close(spool, task).await;
}
