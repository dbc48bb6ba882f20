//! The web chat's session list, rendering, search, keyboard and accessibility
//! in a real headless Chromium against a real gorpd: sessions created,
//! switched and deleted from the list with two tabs agreeing, a streamed
//! answer with its working state and folded steps, Markdown with highlighted
//! code, a failed turn, Approve from a button, history search, and axe-core
//! finding no serious violations at phone and desktop size, light and dark.
//! With `GORP_SCREENSHOT_DIR` set it saves the README's screenshots.

use crate::browser::Browser;
use futures::StreamExt;
use futures::stream::BoxStream;
use gorpd::agent::{AgentBackend, AgentEvent, PromptRequest};
use gorpd::testing::clients::*;
use gorpd::testing::{HangOrEcho, TestServer, test_config};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What a rich answer looks like (the screenshots show it).
const RICH_ANSWER: &str = "Here is **the plan** for `deploy.sh`, as [the runbook](https://example.org/runbook) says:\n\n\
    ```rust\n// Retries the upload three times.\nfn upload(path: &str) -> Result<(), Error> {\n    for attempt in 1..=3 {\n        \
    if send(path).is_ok() { return Ok(()); }\n    }\n    Err(Error::new(\"upload failed\"))\n}\n```\n\n\
    | step | state |\n|---|---|\n| build | done |\n| upload | next |";

/// An agent for these tests: "steps …" reports two progress lines and the
/// start of its answer, then waits for the test to open `gate` before the
/// rest; "fail …" reports a step and fails; "ask …" asks for permission
/// (like [`HangOrEcho`]); "rich …" answers with [`RICH_ANSWER`]; anything else is echoed.
#[derive(Clone)]
struct ShowcaseAgent {
    gate: Arc<Semaphore>,
}

impl AgentBackend for ShowcaseAgent {
    fn prompt(&self, request: PromptRequest) -> BoxStream<'static, AgentEvent> {
        let text = request.text.clone();
        let steps = |events: Vec<AgentEvent>| futures::stream::iter(events);
        if text.starts_with("steps") {
            let gate = self.gate.clone();
            let first = steps(vec![
                AgentEvent::Progress("🔧 read_file README.md".into()),
                AgentEvent::Progress("📋 plan: 1. read 2. answer".into()),
                AgentEvent::Chunk("Working on **it**".into()),
            ]);
            let rest = async move {
                gate.acquire().await.expect("gate open").forget();
                steps(vec![AgentEvent::Chunk(":\n\n```rust\nfn main() {}\n```".into()), AgentEvent::Done])
            };
            return first.chain(futures::stream::once(rest).flatten()).boxed();
        }
        if text.starts_with("fail") {
            return steps(vec![
                AgentEvent::Progress("🔧 run tests".into()),
                AgentEvent::Error("the tool crashed".into()),
            ])
            .boxed();
        }
        if text.starts_with("rich") {
            return steps(vec![AgentEvent::Chunk(RICH_ANSWER.into()), AgentEvent::Done]).boxed();
        }
        HangOrEcho.prompt(request)
    }
}

/// gorpd whose default agent is a [`ShowcaseAgent`] on the returned gate.
async fn server(dir: &std::path::Path) -> (TestServer, Arc<Semaphore>) {
    let mut config = test_config(dir);
    config.default_agent = "showcase".into();
    let gate = Arc::new(Semaphore::new(0));
    let backends = gorpd::agent_backends(&config)
        .with("showcase", ShowcaseAgent { gate: gate.clone() })
        .with("scripted", HangOrEcho);
    (TestServer::start_with(config, backends).await, gate)
}

/// A logged-in chat page.
async fn open_chat(server: &TestServer) -> Browser {
    let browser = Browser::start().await;
    browser.goto(&server.login_url).await;
    browser.wait_for("#send").await;
    browser.wait_for("#new-agent option").await;
    browser
}

async fn say(browser: &Browser, text: &str) {
    browser.type_into("#text", &format!("{text}\n")).await;
}

/// Creates a session from the list's form, with `agent` picked (or the default).
async fn create_session(browser: &Browser, name: &str, agent: Option<&str>) {
    if let Some(agent) = agent {
        let script =
            "const s = document.getElementById('new-agent'); s.value = arguments[0]; return s.value === arguments[0];";
        assert_eq!(browser.eval(script, json!([agent])).await, json!(true), "agent {agent} offered");
    }
    browser.type_into("#new-name", name).await;
    browser.click("#new-session button").await;
    wait_for_view(browser, name).await;
}

/// Waits until the page shows `name` (or DISPATCH for "") as the current session.
async fn wait_for_view(browser: &Browser, name: &str) {
    let script = "const current = document.querySelector('#session-list [aria-current=true]');\
                  return document.getElementById('title').textContent === (arguments[0] || 'DISPATCH')\
                      && current !== null && current.dataset.name === arguments[0];";
    browser.wait_until(&format!("the view {name:?}"), script, json!([name])).await;
}

/// Clicks the session `name` in the list.
async fn pick(browser: &Browser, name: &str) {
    // Found and clicked in one step: the list is redrawn whenever the fleet changes.
    let script = "const b = document.querySelector(`#session-list button[data-name='${arguments[0]}']`);\
                  if (!b) return false; b.click(); return true;";
    assert_eq!(browser.eval(script, json!([name])).await, json!(true), "{name} is listed");
    wait_for_view(browser, name).await;
}

/// The list entry of `name`: [state text, unread text, last line].
async fn list_entry(browser: &Browser, name: &str) -> Value {
    let script = "const b = document.querySelector(`#session-list button[data-name='${arguments[0]}']`);\
                  if (!b) return null; const t = (s) => b.querySelector(s)?.textContent ?? '';\
                  return [t('.state'), t('.unread'), t('.last')];";
    browser.eval(script, json!([name])).await
}

async fn wait_for_entry(browser: &Browser, name: &str, state: &str, unread: &str) {
    let script = "const b = document.querySelector(`#session-list button[data-name='${arguments[0]}']`);\
                  return b !== null && (b.querySelector('.state')?.textContent ?? '') === arguments[1]\
                      && (b.querySelector('.unread')?.textContent ?? '') === arguments[2];";
    let what = format!("{name} listed as {state:?} with {unread:?} unread");
    browser.wait_until(&what, script, json!([name, state, unread])).await;
}

/// Where README screenshots go when `GORP_SCREENSHOT_DIR` is set (relative to the workspace).
fn screenshot_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("GORP_SCREENSHOT_DIR")?);
    Some(if dir.is_absolute() { dir } else { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(dir) })
}

#[tokio::test]
async fn sessions_are_created_switched_and_deleted_from_the_list_and_two_tabs_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _gate) = server(dir.path()).await;
    let browser = open_chat(&server).await;
    wait_for_view(&browser, "").await;

    create_session(&browser, "alpha", None).await;
    say(&browser, "hello alpha").await;
    browser.wait_for_text("echo: hello alpha").await;
    let last_line = "return document.querySelector(\"#session-list button[data-name='alpha'] .last\")?.textContent === arguments[0]";
    browser.wait_until("alpha's last line", last_line, json!(["echo: hello alpha"])).await;
    wait_for_entry(&browser, "alpha", "idle", "").await;
    create_session(&browser, "beta", Some("scripted")).await;

    // A second tab of the same browser is the same channel: it shows beta, and follows a switch.
    let first = browser.current_tab().await;
    let second = browser.open_tab().await;
    browser.switch_to(&second).await;
    browser.goto(&format!("http://{}/", server.http_addr)).await;
    wait_for_view(&browser, "beta").await;
    browser.switch_to(&first).await;
    pick(&browser, "alpha").await;
    browser.switch_to(&second).await;
    wait_for_view(&browser, "alpha").await;
    browser.wait_for_text("echo: hello alpha").await;

    // Messages to another session count as unread there, in both tabs, until it is opened.
    server.control().tell(tell("beta", "from the operator")).await.unwrap();
    wait_for_entry(&browser, "beta", "idle", "2").await;
    browser.switch_to(&first).await;
    wait_for_entry(&browser, "beta", "idle", "2").await;
    // Alt+↓ goes to the next session in the list (DISPATCH, alpha, beta).
    let alt_down = format!("{}{}", char::from(fantoccini::key::Key::Alt), char::from(fantoccini::key::Key::Down));
    browser.type_into("#text", &alt_down).await;
    wait_for_view(&browser, "beta").await;
    browser.wait_for_text("echo: from the operator").await;
    wait_for_entry(&browser, "beta", "idle", "").await;
    browser.switch_to(&second).await;
    wait_for_view(&browser, "beta").await;
    wait_for_entry(&browser, "beta", "idle", "").await;

    // Deleting takes two clicks; the channel is back in DISPATCH, in both tabs.
    browser.click("#delete-session").await;
    browser.wait_for_text("Delete beta?").await;
    browser.click("#delete-session").await;
    wait_for_view(&browser, "").await;
    assert_eq!(list_entry(&browser, "beta").await, Value::Null);
    browser.switch_to(&first).await;
    wait_for_view(&browser, "").await;
    let names: Vec<String> = server
        .control()
        .list_sessions(gorp_proto::v1::ListSessionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .sessions
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["alpha"]);

    // A bad name is refused with the reason, and nothing is created.
    browser.type_into("#new-name", "no spaces").await;
    browser.click("#new-session button").await;
    browser.wait_for_text("session name").await;
    wait_for_view(&browser, "").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_streamed_answer_grows_under_working_with_folded_steps_then_renders_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let (server, gate) = server(dir.path()).await;
    let browser = open_chat(&server).await;
    create_session(&browser, "builder", None).await;

    say(&browser, "steps please").await;
    browser.wait_for_text("Working on **it**").await;
    let streaming = browser
        .eval(
            "const m = document.querySelector('#log .msg.partial'); const steps = m.querySelector('details.steps');\
             return [m.getAttribute('aria-busy'), m.querySelector('.working').textContent, steps.open,\
                     steps.querySelector('summary').textContent, steps.querySelectorAll('.progress').length,\
                     document.getElementById('state').textContent];",
            json!([]),
        )
        .await;
    assert_eq!(streaming, json!(["true", "working…", false, "2 steps", 2, "working…"]));
    wait_for_entry(&browser, "builder", "working…", "").await;

    gate.add_permits(1);
    browser.wait_for("#log .msg.kind-complete pre code .hl-keyword").await;
    let done = browser
        .eval(
            "const m = [...document.querySelectorAll('#log .msg')].pop();\
             return [m.classList.contains('partial'), m.querySelector('.working') === null, m.querySelector('strong').textContent,\
                     m.querySelector('.hl-keyword').textContent, m.querySelector('details.steps summary').textContent,\
                     m.hasAttribute('aria-busy')];",
            json!([]),
        )
        .await;
    assert_eq!(done, json!([false, true, "it", "fn", "2 steps", false]), "the answer replaced the stream in place");
    wait_for_entry(&browser, "builder", "idle", "").await;

    // A failed turn is an error notice, and the list says so.
    say(&browser, "fail now").await;
    browser.wait_for("#log .msg.kind-error").await;
    let error = browser.eval("return document.querySelector('#log .msg.kind-error').innerText", json!([])).await;
    assert!(
        error.as_str().unwrap().contains("builder · error") && error.as_str().unwrap().contains("the tool crashed"),
        "{error}"
    );
    wait_for_entry(&browser, "builder", "last turn failed", "").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn approve_from_a_button_then_search_the_history_from_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _gate) = server(dir.path()).await;
    let browser = open_chat(&server).await;
    create_session(&browser, "careful", Some("scripted")).await;
    say(&browser, "ask to write").await;
    browser.wait_for("#log .actions button.approve").await;
    wait_for_entry(&browser, "careful", "waiting for approval", "").await;
    let labels = browser
        .eval("return [...document.querySelectorAll('#log .actions button')].map(b => b.textContent)", json!([]))
        .await;
    assert_eq!(labels, json!(["Approve", "Approve always", "Deny"]));
    browser.click("#log .actions button.approve").await;
    browser.wait_for_text("decision: yes").await;
    let disabled = browser
        .eval("return [...document.querySelectorAll('#log .actions button')].every(b => b.disabled)", json!([]))
        .await;
    assert_eq!(disabled, json!(true), "an answered request's buttons are disabled");
    wait_for_entry(&browser, "careful", "idle", "").await;

    // The page's second fence: answer HTML is parsed inert and cleaned to an allowlist.
    let cleaned = browser
        .eval(
            "return gorpRender.renderedBody('<p onclick=\"x\">a<img src=x onerror=\"window.pwned=1\"><script>1</script>\
             <a href=\"javascript:x\">l</a><a href=\"https://e.org\" style=\"color:red\">m</a></p>').innerHTML",
            json!([]),
        )
        .await;
    assert_eq!(cleaned, r#"<p>a1<a>l</a><a href="https://e.org">m</a></p>"#);

    // "/" focuses the search; the results come from the store, the words marked.
    browser.eval("document.querySelector('#session-list button').focus()", json!([])).await;
    browser.press("/").await;
    assert_eq!(browser.eval("return document.activeElement.id", json!([])).await, "query");
    browser.type_into("#query", "DECISION\n").await;
    browser.wait_for_text("1 found for “DECISION”").await;
    let found = browser
        .eval("return [...document.querySelectorAll('#result-list li mark')].map(m => m.textContent)", json!([]))
        .await;
    assert_eq!(found, json!(["decision"]));
    browser.press(&char::from(fantoccini::key::Key::Escape).to_string()).await;
    assert_eq!(
        browser.eval("return [document.getElementById('results').hidden, document.activeElement.id]", json!([])).await,
        json!([true, "text"])
    );
    server.stop().await.unwrap();
}

/// A conversation worth looking at: a rich answer, a waiting permission request, three sessions.
async fn furnished_chat(server: &TestServer) -> Browser {
    let browser = open_chat(server).await;
    create_session(&browser, "ops", Some("scripted")).await;
    create_session(&browser, "research", None).await;
    say(&browser, "rich answer please").await;
    browser.wait_for("#log .msg.kind-complete table").await;
    create_session(&browser, "deploy", Some("scripted")).await;
    say(&browser, "ask to deploy").await;
    browser.wait_for("#log .actions button").await;
    pick(&browser, "research").await;
    browser.wait_for("#log .msg.kind-complete table").await;
    server.control().tell(tell("ops", "nightly backup finished")).await.unwrap();
    wait_for_entry(&browser, "ops", "idle", "2").await;
    wait_for_entry(&browser, "deploy", "waiting for approval", "").await;
    browser
}

/// Saves a screenshot named `name` when `GORP_SCREENSHOT_DIR` is set.
async fn shoot(browser: &Browser, name: &str) {
    if let Some(dir) = screenshot_dir() {
        // The list's slide-in settles before the picture.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        browser.screenshot(&dir.join(name)).await;
    }
}

async fn assert_accessible(browser: &Browser, what: &str) {
    let violations = browser.serious_accessibility_violations().await;
    assert!(violations.is_empty(), "serious or critical accessibility violations ({what}): {violations:#?}");
}

#[tokio::test]
async fn axe_finds_no_serious_violations_at_phone_and_desktop_size_in_light_and_dark() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _gate) = server(dir.path()).await;
    let browser = furnished_chat(&server).await;
    // The checker can fail: a button without a name is reported.
    browser
        .eval("const b = document.createElement('button'); b.id = 'nameless'; document.body.append(b);", json!([]))
        .await;
    let found = browser.serious_accessibility_violations().await;
    assert!(found.iter().any(|v| v[0] == "button-name"), "axe reports a nameless button: {found:?}");
    browser.eval("document.getElementById('nameless').remove()", json!([])).await;
    assert_eq!(
        browser.eval("return matchMedia('(prefers-color-scheme: dark)').matches", json!([])).await,
        json!(false)
    );
    browser.set_size(1280, 860).await;
    assert_accessible(&browser, "desktop, light").await;
    shoot(&browser, "chat-desktop.png").await;

    browser.set_size(390, 844).await;
    assert_eq!(browser.eval("return [innerWidth, innerHeight]", json!([])).await, json!([390, 844]));
    assert_accessible(&browser, "phone, light").await;
    let composer = "const r = document.getElementById('send').getBoundingClientRect(); return r.top > 0 && r.bottom <= innerHeight";
    assert_eq!(browser.eval(composer, json!([])).await, json!(true), "the composer is on screen on a phone");
    shoot(&browser, "chat-phone.png").await;
    browser.click("#show-sessions").await;
    let open = "return getComputedStyle(document.getElementById('sessions')).visibility === 'visible'";
    browser.wait_until("the session list open", open, json!([])).await;
    assert_accessible(&browser, "phone, session list open").await;
    shoot(&browser, "chat-phone-sessions.png").await;
    browser.press(&char::from(fantoccini::key::Key::Escape).to_string()).await;

    browser.prefer_dark(true).await;
    assert_eq!(browser.eval("return matchMedia('(prefers-color-scheme: dark)').matches", json!([])).await, json!(true));
    assert_accessible(&browser, "phone, dark").await;
    browser.set_size(1280, 860).await;
    assert_accessible(&browser, "desktop, dark").await;
    shoot(&browser, "chat-desktop-dark.png").await;
    server.stop().await.unwrap();
}
