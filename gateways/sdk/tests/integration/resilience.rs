//! Restarts on either side, and a token gorpd rejects.

use super::*;
use gorp_gateway::ConnectionState;
use gorpd::testing::clients::{bind, create, within};

#[tokio::test]
async fn a_bad_token_ends_the_runner_with_a_clear_error() {
    let server = TestServer::start().await;
    let memory = platform(4096, true);
    let error = within(Runner::new(config(&server, "not-a-token"), memory.clone()).run(CancellationToken::new()))
        .await
        .expect_err("rejected");
    assert!(matches!(error, GatewayError::Unauthorized(_)), "{error:?}");
    assert!(error.to_string().starts_with("gorpd rejected the gateway token: "), "{error}");

    // A gateway token for another platform is rejected the same way.
    let other = server.gateway_token("slack").await;
    let error =
        within(Runner::new(config(&server, &other), memory).run(CancellationToken::new())).await.expect_err("rejected");
    assert!(error.to_string().contains("slack"), "{error}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn gorpd_restarted_while_the_user_writes_loses_no_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    server.control().create_session(create("steady")).await.unwrap();
    server.control().bind_session(bind("memory", "c1", "steady")).await.unwrap();
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, false);
    let runner = Runner::new(config(&server, &token), memory.clone());
    let mut state = runner.state();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(runner.run(shutdown.clone()));
    exchange(&memory, "c1", "one", "echo: one").await;
    for text in ["two", "three"] {
        memory.user_says("c1", "u1", text);
    }
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    server.stop().await.unwrap();
    for text in ["four", "five"] {
        memory.user_says("c1", "u1", text);
    }
    within(state.wait_for(|s| matches!(s, ConnectionState::Disconnected { .. }))).await.unwrap();

    let config = gorpd::testing::test_config(dir.path());
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_at(config, backends, grpc_addr, http_addr).await;
    memory.user_says("c1", "u1", "six");
    wait_for_text(&memory, "c1", |t| t == "echo: six").await;
    until(|| memory.offset() == 6).await;
    assert_eq!(server.store.inbound_count().await.unwrap(), 6, "each message stored exactly once");
    for text in ["four", "five"] {
        wait_for_text(&memory, "c1", |t| t == format!("echo: {text}")).await;
    }
    shutdown.cancel();
    within(handle).await.unwrap().unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_gateway_restarted_while_answers_are_produced_delivers_each_final_once() {
    let server = TestServer::start().await;
    server.control().create_session(create("busy")).await.unwrap();
    server.control().bind_session(bind("memory", "c1", "busy")).await.unwrap();
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, false);
    let first = Gateway::start(config(&server, &token), memory.clone());
    for i in 0..8 {
        server.control().tell(gorpd::testing::clients::tell("busy", &format!("job {i}"))).await.unwrap();
    }
    wait_for_text(&memory, "c1", |t| t == "echo: job 1").await;
    first.stop().await.unwrap();
    for i in 8..12 {
        server.control().tell(gorpd::testing::clients::tell("busy", &format!("job {i}"))).await.unwrap();
    }
    let second = Gateway::start(config(&server, &token), memory.clone());
    wait_for_text(&memory, "c1", |t| t == "echo: job 11").await;
    let texts = memory.texts("c1");
    let expected: Vec<String> = (0..12).map(|i| format!("echo: job {i}")).collect();
    assert_eq!(texts, expected);
    assert_eq!(memory.repeated_deliveries(), 0);
    second.stop().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_gorpd_is_retried_and_a_stop_ends_the_runner() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = GatewayConfig::new("some-token").gorpd(format!("http://{unused}"));
    config.backoff = BackoffConfig { initial: Duration::from_millis(20), max: Duration::from_millis(50) };
    let runner = Runner::new(config, platform(4096, true));
    let mut state = runner.state();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(runner.run(shutdown.clone()));
    for _ in 0..3 {
        within(state.wait_for(|s| matches!(s, ConnectionState::Connecting))).await.unwrap();
        let retrying =
            within(state.wait_for(|s| matches!(s, ConnectionState::Disconnected { .. }))).await.unwrap().clone();
        let ConnectionState::Disconnected { reason, .. } = retrying else { unreachable!() };
        assert!(!reason.is_empty());
    }
    shutdown.cancel();
    within(handle).await.unwrap().unwrap();
    assert_eq!(*state.borrow(), ConnectionState::Stopped);
}

#[tokio::test]
async fn a_bad_url_is_a_config_error() {
    let error = Runner::new(GatewayConfig::new("t").gorpd("ftp://x"), platform(10, false))
        .run(CancellationToken::new())
        .await
        .expect_err("bad url");
    assert!(matches!(error, GatewayError::Config(_)), "{error}");
}

#[tokio::test]
async fn a_fatal_platform_error_ends_the_runner() {
    let server = TestServer::start().await;
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, true);
    memory.fail_listen(gorp_gateway::PlatformError::Fatal("bot token revoked".into()));
    let error =
        within(Runner::new(config(&server, &token), memory).run(CancellationToken::new())).await.expect_err("fatal");
    assert_eq!(error.to_string(), "the platform cannot be used: bot token revoked");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_stop_during_a_rate_limit_wait_is_prompt_and_the_answer_comes_after_a_restart() {
    let server = TestServer::start().await;
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, true);
    memory.fail_next(gorp_gateway::PlatformError::RateLimited(Duration::from_secs(3600)), 1);
    let first = Gateway::start(config(&server, &token), memory.clone());
    memory.user_says("c1", "u1", "!help");
    until(|| memory.failed_calls() == 1).await;
    let started = std::time::Instant::now();
    first.stop().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "stopped in {:?}", started.elapsed());
    assert!(memory.messages().is_empty());

    let second = Gateway::start(config(&server, &token), memory.clone());
    wait_for_text(&memory, "c1", |t| t.contains("!create")).await;
    assert_eq!(memory.messages().len(), 1);
    second.stop().await.unwrap();
    server.stop().await.unwrap();
}
