//! Restart scenarios: the platform is told a message is handled only once
//! gorpd has it (or the spool does), and an answer is acknowledged to gorpd
//! only once the platform took it, so restarting gorpd or the gateway, even
//! mid-answer, neither loses nor repeats a message or an answer.

use super::{Driver, User, World, wait_for};

/// Messages written while gorpd is down are answered once it is back, each
/// once; where the gateway does not spool, nothing is acknowledged to the
/// platform meanwhile.
pub async fn messages_sent_while_gorpd_restarts_are_answered_once<D: Driver>() {
    let world = World::<D>::start().await;
    let gateway = world.gateway(&[]);
    let dm = world.platform.dm(User::Alice).await;
    world.bind("steady", &dm).await;
    world.platform.say(&dm, User::Alice, "one").await;
    world.answered_once(&dm, &["one"]).await;
    let (world, ()) = world
        .restart_gorpd(async |platform: &D| {
            let acknowledged = platform.acknowledged();
            platform.say(&dm, User::Alice, "two").await;
            platform.say(&dm, User::Alice, "three").await;
            if !D::SPOOLS_WHILE_GORPD_IS_AWAY {
                let now = platform.acknowledged();
                assert_eq!(now, acknowledged, "nothing is confirmed while gorpd cannot acknowledge it");
            }
        })
        .await;
    world.answered_once(&dm, &["one", "two", "three"]).await;
    assert_eq!(world.inbound().await, 3, "each message stored exactly once");
    gateway.stop().await;
    world.stop().await;
}

/// A gateway started while gorpd is down says so, keeps what users write,
/// and answers it once gorpd is up.
pub async fn a_gateway_started_before_gorpd_says_so_and_keeps_retrying<D: Driver>() {
    let world = World::<D>::start().await;
    let command = world.command(&world.token);
    let (world, (gateway, log, dm)) = world
        .restart_gorpd(async move |platform: &D| {
            let (gateway, log) = gorp_fakes::GatewayProcess::spawn_logged(command);
            let retrying = || log.contains("cannot reach gorpd; retrying").then_some(());
            wait_for(D::PATIENCE, "the gateway says it cannot reach gorpd", retrying).await;
            let dm = platform.dm(User::Alice).await;
            platform.say(&dm, User::Alice, "!help").await;
            (gateway, log, dm)
        })
        .await;
    world.answer(&dm, "!join").await;
    assert!(log.contains("connected to gorpd"));
    gateway.stop().await;
    world.stop().await;
}

/// A gateway stopped and started again reads what was written meanwhile and
/// repeats nothing it answered before.
pub async fn a_restarted_gateway_reads_what_it_missed_and_repeats_nothing<D: Driver>() {
    let world = World::<D>::start().await;
    let first = world.gateway(&[]);
    let dm = world.platform.dm(User::Alice).await;
    world.bind("steady", &dm).await;
    world.platform.say(&dm, User::Alice, "one").await;
    world.answered_once(&dm, &["one"]).await;
    world.caught_up().await;
    first.stop().await;

    world.platform.say(&dm, User::Alice, "two").await;
    world.platform.say(&dm, User::Alice, "three").await;
    let second = world.gateway(&[]);
    world.answered_once(&dm, &["one", "two", "three"]).await;
    assert_eq!(world.inbound().await, 3);
    second.stop().await;
    world.stop().await;
}

/// A gateway stopped while an answer streams (another question waiting)
/// delivers each final once after its restart, one message per answer.
pub async fn a_gateway_stopped_while_answers_stream_delivers_each_final_once<D: Driver>() {
    let world = World::<D>::slow(200).await;
    let first = world.gateway(&["--edit-interval-ms", "100"]);
    let dm = world.platform.dm(User::Alice).await;
    world.bind("slow", &dm).await;
    let questions = ["alpha beta gamma delta epsilon", "zeta eta theta iota kappa"];
    for question in questions {
        world.platform.say(&dm, User::Alice, question).await;
    }
    let streaming = || world.platform.posted(&dm).first().map(|p| p.text.starts_with("echo"));
    wait_for(D::PATIENCE, "the first answer streams", || streaming().filter(|s| *s)).await;
    first.stop().await;
    let second = world.gateway(&["--edit-interval-ms", "100"]);
    world.answered_once(&dm, &questions).await;
    assert_eq!(world.texts(&dm).len(), 2, "one message per answer: {:?}", world.texts(&dm));
    assert_eq!(world.inbound().await, 2);
    second.stop().await;
    world.stop().await;
}

/// A gateway killed mid-answer (nothing flushed) leaves no half-streamed
/// preview behind: after the restart the answer is finished in that message.
pub async fn a_gateway_killed_mid_answer_finishes_it_in_its_preview_after_a_restart<D: Driver>() {
    let world = World::<D>::slow(250).await;
    let first = world.gateway(&["--edit-interval-ms", "100"]);
    let dm = world.platform.dm(User::Alice).await;
    world.bind("slow", &dm).await;
    let question = "alpha beta gamma delta epsilon zeta eta theta iota kappa";
    world.platform.say(&dm, User::Alice, question).await;
    // Killed once the preview is established (edited once: it was recorded
    // before the flush that edits it).
    let edited = || world.platform.posted(&dm).first().filter(|p| p.edits >= 1).map(|_| ());
    wait_for(D::PATIENCE, "the preview is edited once", edited).await;
    first.kill().await;
    let second = world.gateway(&["--edit-interval-ms", "100"]);
    let answer = format!("echo: {question}");
    world.answer(&dm, &answer).await;
    assert_eq!(world.texts(&dm), vec![answer], "one message per answer, the preview edited to the final");
    second.stop().await;
    world.stop().await;
}
