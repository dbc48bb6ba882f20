//! gorpd's ACP backend against real agent processes over real pipes: this
//! crate's scripted agent, and `elizacp`, an ACP agent nobody here wrote.

use gorp_proto::v1 as pb;
use gorpd::config::{AcpProfile, AgentProfile, Config, McpServerConfig, PriceTable};
use gorpd::testing::clients::*;
use gorpd::testing::{TestServer, test_config, unframed_acp, use_acp_agent};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[path = "gorpd/files.rs"]
mod files;

const AGENT: &str = env!("CARGO_BIN_EXE_gorp-test-agent");

/// gorpd on `dir` whose default agent is the scripted ACP agent.
async fn start(dir: &Path, change: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = test_config(dir);
    use_acp_agent(&mut config, AGENT);
    change(&mut config);
    let backends = gorpd::agent_backends(&config);
    TestServer::start_with(config, backends).await
}

async fn session_with_channel(server: &TestServer, name: &str) -> Chat {
    let mut control = server.control();
    control.create_session(create(name)).await.unwrap();
    control.bind_session(bind("web", name, name)).await.unwrap();
    Chat::open(&mut server.admin_bus(), "web").await
}

async fn status(server: &TestServer, name: &str) -> pb::Session {
    server.control().get_session(pb::GetSessionRequest { name: name.into() }).await.unwrap().into_inner()
}

#[tokio::test]
async fn a_prompt_streams_through_acp_to_a_grpc_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "coder").await;
    let id = chat.send("coder", "hello there").await;
    let mut chunks = Vec::new();
    let answer = loop {
        match chat.subscriber.next().await.unwrap().kind.unwrap() {
            pb::delivery::Kind::Chunk(chunk) => chunks.push(chunk.text),
            pb::delivery::Kind::Response(response) => break response,
            pb::delivery::Kind::CaughtUp(_) => {}
        }
    };
    assert_eq!(answer.in_reply_to, id);
    assert_eq!(answer.text, "acp[1]: hello there");
    assert!(chunks.len() >= 3 && chunks.concat() == answer.text, "{chunks:?}");
    assert!(status(&server, "coder").await.agent_running, "the agent stays warm between prompts");
    assert_eq!(chat.ask("coder", "again").await, "acp[2]: again", "one process, one conversation");
    let progress = chat.ask("coder", "tool").await;
    assert_eq!(progress, "tool done");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_crash_mid_turn_is_reported_and_the_next_prompt_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "fragile").await;
    assert_eq!(chat.ask("fragile", "first").await, "acp[1]: first");
    let crashed = chat.say("fragile", "crash now").await;
    assert_eq!(crashed.kind, pb::ResponseKind::Error as i32);
    assert!(crashed.text.contains("exited"), "{}", crashed.text);
    assert!(crashed.text.contains("> fatal: scripted crash"), "its stderr is quoted: {}", crashed.text);
    // A new process loads the stored agent session: the conversation goes on at turn 3.
    assert_eq!(chat.ask("fragile", "still there?").await, "acp[3]: still there?");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_gorpd_restart_resumes_the_agent_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "durable").await;
    assert_eq!(chat.ask("durable", "one").await, "acp[1]: one");
    drop(chat);
    server.stop().await.unwrap();

    let server = start(dir.path(), |_| {}).await;
    assert!(!status(&server, "durable").await.agent_running, "the process died with gorpd");
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert_eq!(chat.ask("durable", "two").await, "acp[2]: two");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_acp_permission_request_is_answered_from_chat() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "careful").await;
    chat.send("careful", "ask to write").await;
    let request = chat.response().await;
    let permission = request.permission.expect("a permission request");
    assert_eq!(permission.title, "write notes.txt");
    let kinds: Vec<_> = permission.options.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, ["allow_once", "allow_always", "reject_once"]);
    chat.say("careful", &format!("!approve {} always", permission.id)).await;
    assert_eq!(chat.response().await.text, "permission granted: always");

    chat.send("careful", "ask again").await;
    let id = chat.response().await.permission.unwrap().id;
    chat.say("careful", &format!("!deny {id}")).await;
    assert_eq!(chat.response().await.text, "permission denied");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn auto_approve_profiles_never_ask() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        config
            .agents
            .insert("test".into(), AgentProfile::Acp(AcpProfile { auto_approve: true, ..unframed_acp(AGENT) }));
    })
    .await;
    let mut chat = session_with_channel(&server, "yolo").await;
    assert_eq!(chat.ask("yolo", "ask away").await, "permission granted: allow");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn cancel_stops_the_turn_and_the_agent_hears_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "slow").await;
    chat.send("slow", "hang around").await;
    wait_for_state(&server.control(), "slow", "busy").await;
    let reply = chat.say("slow", "!cancel").await;
    assert_eq!(reply.text, "Cancelling slow's turn.");
    let notice = chat.response().await;
    assert!(notice.text.contains("cancelled by alice (web:slow)"), "{}", notice.text);
    assert_eq!(chat.ask("slow", "next").await, "acp[2]: next", "the same process carries on");
    assert!(chat.ask("slow", "!cancel").await.contains("not working on anything"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_turn_timeout_cancels_a_silent_agent() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| config.turn_timeout_secs = 1).await;
    let mut chat = session_with_channel(&server, "mute").await;
    let answer = chat.say("mute", "hang forever").await;
    assert_eq!(answer.kind, pb::ResponseKind::Error as i32);
    assert!(answer.text.contains("no answer within 1 s"), "{}", answer.text);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn idle_processes_stop_and_the_live_cap_evicts_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        config.agent_idle_secs = 1;
        config.max_agents = 1;
    })
    .await;
    let mut chat = session_with_channel(&server, "a").await;
    server.control().create_session(create("b")).await.unwrap();
    server.control().bind_session(bind("web", "b", "b")).await.unwrap();
    assert_eq!(chat.ask("a", "hi").await, "acp[1]: hi");
    assert!(status(&server, "a").await.agent_running);
    assert_eq!(chat.ask("b", "hi").await, "acp[1]: hi");
    assert!(status(&server, "b").await.agent_running);
    assert!(!status(&server, "a").await.agent_running, "max_agents = 1 stopped a");
    assert_eq!(chat.ask("a", "back").await, "acp[2]: back", "a cold session restarts and resumes");
    wait_for_session(&server.control(), "a", |s| !s.agent_running).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn file_access_is_confined_to_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "files").await;
    std::fs::write(dir.path().join("workspaces/files/notes.txt"), "inside").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "outside").unwrap();
    assert_eq!(chat.ask("files", "read notes.txt").await, "file: inside");
    let refused = chat.ask("files", "read ../../secret.txt").await;
    assert!(refused.starts_with("read failed") && refused.contains("outside the session's workspace"), "{refused}");
    server.stop().await.unwrap();
}

/// `elizacp` from crates.io (tests/run.sh installs it into ~/.cache/gorp-tools); `GORP_ELIZACP` overrides.
fn elizacp() -> String {
    let default = std::env::var("HOME").map(|h| format!("{h}/.cache/gorp-tools/bin/elizacp")).unwrap_or_default();
    let path = std::env::var("GORP_ELIZACP").unwrap_or(default);
    assert!(
        Path::new(&path).is_file(),
        "elizacp not found at {path}: run tests/run.sh (it installs it) or set GORP_ELIZACP"
    );
    path
}

#[tokio::test]
async fn elizacp_answers_through_gorp() {
    let dir = tempfile::tempdir().unwrap();
    let eliza = elizacp();
    let server = start(dir.path(), |config| {
        let args = vec!["--deterministic".to_owned(), "acp".to_owned()];
        config.agents.insert("eliza".into(), AgentProfile::Acp(AcpProfile { args, ..AcpProfile::new(eliza) }));
        config.default_agent = "eliza".into();
    })
    .await;
    let mut chat = session_with_channel(&server, "therapy").await;
    let answer = tokio::time::timeout(Duration::from_secs(60), chat.say("therapy", "I am feeling tired today"))
        .await
        .expect("eliza answered");
    assert_eq!(answer.kind, pb::ResponseKind::Complete as i32, "{}", answer.text);
    assert!(!answer.text.trim().is_empty());
    let second = chat.say("therapy", "Because I worked all night").await;
    assert_eq!(second.kind, pb::ResponseKind::Complete as i32, "{}", second.text);
    let status = status(&server, "therapy").await;
    assert_eq!((status.backend.as_str(), status.agent_running), ("eliza", true));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn deleting_a_session_stops_its_agent_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "gone").await;
    assert_eq!(chat.ask("gone", "hi").await, "acp[1]: hi");
    server.control().delete_session(pb::DeleteSessionRequest { name: "gone".into() }).await.unwrap();
    // One delivery stream per gateway id: the first must be gone before the next opens.
    drop(chat);
    wait_for_gateway(&server.control(), "web", |gateway| !gateway.connected).await;
    let mut chat = session_with_channel(&server, "gone").await;
    assert_eq!(chat.ask("gone", "hi again").await, "acp[1]: hi again", "a new session gets a new agent conversation");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_process_that_dies_between_turns_is_noticed_and_the_next_message_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "mortal").await;
    assert_eq!(chat.ask("mortal", "die after answering").await, "dying after this turn");
    wait_for_session(&server.control(), "mortal", |s| !s.agent_running).await;
    let status = chat.ask("mortal", "!status mortal").await;
    assert!(status.contains("not running"), "{status}");
    assert_eq!(chat.ask("mortal", "still there?").await, "acp[2]: still there?", "a new process resumes");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_failing_agent_s_stderr_reaches_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        let env = BTreeMap::from([("GORP_TEST_AGENT_STARTUP_ERROR".to_owned(), "API key is not set".to_owned())]);
        config.agents.insert("test".into(), AgentProfile::Acp(AcpProfile { env, ..unframed_acp(AGENT) }));
    })
    .await;
    let mut chat = session_with_channel(&server, "keyless").await;
    let answer = chat.say("keyless", "hello").await;
    assert_eq!(answer.kind, pb::ResponseKind::Error as i32);
    assert!(answer.text.contains("exited (exit status: 1)"), "{}", answer.text);
    assert!(answer.text.contains("> API key is not set"), "{}", answer.text);
    let status = chat.ask("keyless", "!status keyless").await;
    assert!(status.contains("not running"), "{status}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_sender_is_in_the_prompt_by_default_and_the_template_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        config.agents.insert("test".into(), AgentProfile::Acp(AcpProfile::new(AGENT)));
        let framed = AcpProfile {
            prompt_template: Some("<{sender}@{platform}/{channel}> {text}".into()),
            ..unframed_acp(AGENT)
        };
        config.agents.insert("framed".into(), AgentProfile::Acp(framed));
    })
    .await;
    let mut chat = session_with_channel(&server, "shared").await;
    assert_eq!(chat.ask("shared", "hello all").await, "acp[1]: alice (web): hello all");
    let mut control = server.control();
    control.create_session(pb::CreateSessionRequest { agent: "framed".into(), ..create("custom") }).await.unwrap();
    control.bind_session(bind("web", "custom", "custom")).await.unwrap();
    assert_eq!(chat.ask("custom", "hi").await, "acp[1]: <alice@web/custom> hi");
    server.stop().await.unwrap();
}

/// Publishes `text` and returns the progress lines streamed for it and its final answer.
async fn say_with_progress(chat: &mut Chat, channel: &str, text: &str) -> (Vec<String>, pb::Response) {
    chat.send(channel, text).await;
    let mut progress = Vec::new();
    loop {
        match chat.subscriber.next().await.unwrap().kind.unwrap() {
            pb::delivery::Kind::Chunk(chunk) if chunk.kind == pb::ChunkKind::Progress as i32 => {
                progress.push(chunk.text)
            }
            pb::delivery::Kind::Response(response) => {
                chat.subscriber.ack(response.seq).await;
                return (progress, response);
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn terminal_output_reaches_the_channel_its_exit_code_the_agent_and_the_allow_list_holds() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        let profile = AcpProfile { terminal_commands: vec!["sh".into()], ..unframed_acp(AGENT) };
        config.agents.insert("test".into(), AgentProfile::Acp(profile));
    })
    .await;
    let mut chat = session_with_channel(&server, "shell").await;
    std::fs::write(dir.path().join("workspaces/shell/build.sh"), "echo compiling\npwd\nexit 3\n").unwrap();
    let (progress, answer) = say_with_progress(&mut chat, "shell", "term sh build.sh").await;
    let workspace = dir.path().join("workspaces/shell").canonicalize().unwrap();
    assert_eq!(answer.text, format!("exit 3: compiling\n{}", workspace.display()), "the agent got the exit code");
    assert_eq!(progress[0], "🖥 $ sh build.sh");
    assert!(progress.iter().any(|p| p.contains("compiling")), "the output streamed as progress: {progress:?}");

    let (progress, answer) = say_with_progress(&mut chat, "shell", "term rm -rf build.sh").await;
    assert!(answer.text.starts_with("terminal refused: "), "{}", answer.text);
    assert!(answer.text.contains("is not allowed by this gorp profile (terminal_commands: sh)"), "{}", answer.text);
    assert!(progress.iter().any(|p| p.starts_with("🚫 command \"rm\"")), "{progress:?}");
    assert!(dir.path().join("workspaces/shell/build.sh").exists(), "nothing ran");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn without_terminal_commands_the_agent_gets_no_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "noshell").await;
    let answer = chat.ask("noshell", "term sh -c true").await;
    assert!(answer.contains("terminal_commands: none"), "{answer}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn modes_and_models_are_shown_set_from_chat_and_set_per_profile() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        let planner = AcpProfile { mode: Some("plan".into()), model: Some("large".into()), ..unframed_acp(AGENT) };
        config.agents.insert("planner".into(), AgentProfile::Acp(planner));
    })
    .await;
    let mut chat = session_with_channel(&server, "modal").await;
    assert!(chat.ask("modal", "!mode").await.contains("has reported no mode yet"));
    assert_eq!(chat.ask("modal", "settings").await, "mode=ask model=small mcp=none");
    let modes = chat.ask("modal", "!mode").await;
    assert!(modes.starts_with("modal's agent mode: ask") && modes.contains("• plan — plan mode"), "{modes}");
    assert_eq!(chat.ask("modal", "!mode code").await, "The agent's mode is now code.");
    assert_eq!(chat.ask("modal", "!model large").await, "The agent's model is now large.");
    assert_eq!(chat.ask("modal", "settings").await, "mode=code model=large mcp=none", "the agent switched");
    let refused = chat.ask("modal", "!mode turbo").await;
    assert!(refused.contains("no mode \"turbo\" (it offers: ask, code, plan)"), "{refused}");
    let status = chat.ask("modal", "!status modal").await;
    assert!(status.contains("\nmode: code\nmodel: large"), "{status}");

    // A new process (killed between turns) gets the chosen mode and model again.
    assert_eq!(chat.ask("modal", "die").await, "dying after this turn");
    wait_for_session(&server.control(), "modal", |s| !s.agent_running).await;
    assert_eq!(chat.ask("modal", "settings").await, "mode=code model=large mcp=none");

    let mut control = server.control();
    control.create_session(pb::CreateSessionRequest { agent: "planner".into(), ..create("planned") }).await.unwrap();
    control.bind_session(bind("web", "planned", "planned")).await.unwrap();
    assert_eq!(chat.ask("planned", "settings").await, "mode=plan model=large mcp=none", "the profile's defaults");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_profile_s_mcp_servers_reach_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        let files = McpServerConfig { name: "files".into(), command: Some("mcp-files".into()), ..Default::default() };
        let docs =
            McpServerConfig { name: "docs".into(), url: Some("https://mcp.example/".into()), ..Default::default() };
        config.agents.insert(
            "test".into(),
            AgentProfile::Acp(AcpProfile { mcp_servers: vec![files, docs], ..unframed_acp(AGENT) }),
        );
    })
    .await;
    let mut chat = session_with_channel(&server, "tools").await;
    let expected = "mode=ask model=small mcp=files (stdio mcp-files), docs (http https://mcp.example/)";
    assert_eq!(chat.ask("tools", "settings").await, expected);
    // session/load gets them too.
    assert_eq!(chat.ask("tools", "die").await, "dying after this turn");
    wait_for_session(&server.control(), "tools", |s| !s.agent_running).await;
    assert_eq!(chat.ask("tools", "settings").await, expected);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_agent_s_commands_are_listed_by_help_and_a_slash_command_reaches_it_unframed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        // The default template frames messages, but never a slash command.
        config.agents.insert("test".into(), AgentProfile::Acp(AcpProfile::new(AGENT)));
    })
    .await;
    let mut chat = session_with_channel(&server, "cmds").await;
    assert_eq!(chat.ask("cmds", "hi").await, "acp[1]: alice (web): hi");
    let help = chat.ask("cmds", "!help").await;
    assert!(
        help.contains(
            "Commands of cmds's agent (send them as a message):\n/review <what to review> — Review the changes"
        ),
        "{help}"
    );
    assert_eq!(chat.ask("cmds", "/review the last commit").await, "review of: the last commit");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn thinking_and_tool_call_diffs_arrive_as_progress() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "verbose").await;
    let (progress, answer) = say_with_progress(&mut chat, "verbose", "think").await;
    assert_eq!(answer.text, "thought it through");
    assert_eq!(progress, ["💭 thinking\nConsidering the options."]);
    let (progress, answer) = say_with_progress(&mut chat, "verbose", "edit").await;
    assert_eq!(answer.text, "edited");
    assert_eq!(
        progress,
        ["🔧 edit notes.txt (running)\n📝 notes.txt\n- two\n+ 2", "🔧 edit notes.txt: done\n1 line changed"],
        "an update without a title names its tool call"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_agent_that_needs_a_login_gets_login_instructions_and_login_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        let env = BTreeMap::from([("GORP_TEST_AGENT_REQUIRE_LOGIN".to_owned(), "1".to_owned())]);
        config.agents.insert("test".into(), AgentProfile::Acp(AcpProfile { env, ..unframed_acp(AGENT) }));
    })
    .await;
    let mut chat = session_with_channel(&server, "locked").await;
    let refused = chat.say("locked", "hello").await;
    assert_eq!(refused.kind, pb::ResponseKind::Error as i32);
    let ways = "Ways to log in (!login <id>):\n• device — Device code: Open https://login.example.test/device and enter GORP-1234";
    assert!(refused.text.contains(ways), "{}", refused.text);
    assert!(chat.ask("locked", "!status locked").await.contains("login: required"));
    assert!(chat.ask("locked", "!login").await.contains(ways));
    assert!(chat.ask("locked", "!login sms").await.contains("No login method \"sms\""));
    assert_eq!(chat.ask("locked", "!login device").await, "Logged in with Device code. Send your message again.");
    assert_eq!(chat.ask("locked", "hello").await, "acp[1]: hello");
    assert!(!chat.ask("locked", "!status locked").await.contains("login: required"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn token_usage_context_and_cost_appear_in_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        let prices = PriceTable { input_per_million: 3.0, output_per_million: 15.0, currency: "USD".into() };
        config
            .agents
            .insert("priced".into(), AgentProfile::Acp(AcpProfile { prices: Some(prices), ..unframed_acp(AGENT) }));
    })
    .await;
    let mut chat = session_with_channel(&server, "metered").await;
    assert_eq!(chat.ask("metered", "usage").await, "usage reported");
    let text = chat.ask("metered", "!status metered").await;
    assert!(text.contains("\ncontext: 1200 of 200000 tokens\n"), "{text}");
    assert!(text.contains("tokens: 1200 in, 300 out (last turn: 1200 in, 300 out)\ncost: 0.0421 USD"), "{text}");
    let reported = status(&server, "metered").await;
    let usage = (reported.input_tokens, reported.output_tokens, reported.context_used, reported.context_size);
    assert_eq!(usage, (1200, 300, 1200, 200_000));
    assert_eq!((reported.agent_mode.as_str(), reported.agent_model.as_str()), ("ask", "small"));
    assert_eq!(chat.ask("metered", "no usage this time").await, "acp[2]: no usage this time");
    let text = chat.ask("metered", "!status metered").await;
    assert!(text.contains("tokens: 1200 in, 300 out\n"), "a turn without usage is no last turn: {text}");

    // With a price table the cost is gorp's own estimate: 1200 × 3 / 1e6 + 300 × 15 / 1e6.
    let mut control = server.control();
    control.create_session(pb::CreateSessionRequest { agent: "priced".into(), ..create("priced") }).await.unwrap();
    control.bind_session(bind("web", "priced", "priced")).await.unwrap();
    assert_eq!(chat.ask("priced", "usage").await, "usage reported");
    assert!(chat.ask("priced", "!status priced").await.contains("\ncost: 0.0081 USD"));
    server.stop().await.unwrap();
}
