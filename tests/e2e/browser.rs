//! Headless Chromium for the browser tests, driven through chromedriver with
//! the `fantoccini` WebDriver client (Debian packages `chromium` and
//! `chromium-driver`, installed by tests/run.sh): start a browser, open pages
//! and tabs, wait for elements and text, type, click, run a script, size the
//! window, take a screenshot, and run the vendored axe-core accessibility check.
//!
//! chromedriver leads its own process group, and every Chromium process it
//! starts is in that group: dropping a [`Browser`] (also while a test panics)
//! kills the whole group.

use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// Upper bound for waiting on something in a page.
const PAGE_WAIT: Duration = Duration::from_secs(15);
/// Upper bound for chromedriver to start answering.
const DRIVER_START: Duration = Duration::from_secs(10);
/// axe-core, vendored with its license in tests/e2e/vendor (see the README there).
const AXE_SCRIPT: &str = include_str!("vendor/axe.min.js");

/// A headless Chromium session; the driver and every browser process it
/// started die with it (the whole process group is killed on drop).
pub struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn chromium_binary() -> String {
    std::env::var("GORP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn start_driver(port: u16) -> tokio::process::Child {
    let driver_bin = std::env::var("GORP_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
    assert!(Path::new(&driver_bin).exists(), "{driver_bin} is missing: run tests/run.sh (it installs chromium-driver)");
    tokio::process::Command::new(&driver_bin)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        // Its own process group, so the browsers it starts end with it (see Drop).
        .process_group(0)
        .spawn()
        .expect("chromedriver starts")
}

fn capabilities(profile: &Path) -> fantoccini::wd::Capabilities {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium_binary(), "args": args}
    });
    serde_json::from_value(capabilities).unwrap()
}

fn not_listening(error: &fantoccini::error::NewSessionError) -> bool {
    use fantoccini::error::NewSessionError as E;
    matches!(error, E::Failed(_) | E::FailedC(_) | E::Lost(_))
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium profile.
    pub async fn start() -> Self {
        let port = free_port();
        let driver = start_driver(port);
        let profile = tempfile::tempdir().unwrap();
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities(profile.path()));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + DRIVER_START;
        // chromedriver refuses connections until it listens; no other error is retried.
        let client = loop {
            match builder.connect(&url).await {
                Ok(client) => break client,
                Err(error) if not_listening(&error) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(error) => panic!("no WebDriver session from chromedriver: {error}"),
            }
        };
        Self { client, driver, _profile: profile }
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("current URL").to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its result.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        let args = match args {
            Value::Array(args) => args,
            other => vec![other],
        };
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The visible text of the page body.
    pub async fn body_text(&self) -> String {
        self.eval("return document.body ? document.body.innerText : ''", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Waits until `css` matches an element.
    pub async fn wait_for(&self, css: &str) {
        let script = "return document.querySelector(arguments[0]) !== null";
        self.wait_until(&format!("an element {css}"), script, json!([css])).await;
    }

    /// Waits until the page body's text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) {
        let script = "return document.body !== null && document.body.innerText.includes(arguments[0])";
        self.wait_until(&format!("text {needle:?}"), script, json!([needle])).await;
    }

    /// Waits until `script` (run with `args`) returns `true`; `what` names it in the failure.
    pub async fn wait_until(&self, what: &str, script: &str, args: Value) {
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.eval(script, args.clone()).await == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("waited in vain for {what}; the page says:\n{}", self.body_text().await);
    }

    /// Types `text` into the element `css` (a trailing "\n" presses Enter).
    pub async fn type_into(&self, css: &str, text: &str) {
        let text = text.replace('\n', &char::from(fantoccini::key::Key::Enter).to_string());
        self.find(css).await.send_keys(&text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Presses `keys` (WebDriver key codes allowed) on whatever has the focus.
    pub async fn press(&self, keys: &str) {
        let focused = self.client.active_element().await.expect("a focused element");
        focused.send_keys(keys).await.unwrap_or_else(|e| panic!("press {keys:?}: {e}"));
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Sizes the window so the page's viewport is `width` × `height` CSS pixels.
    pub async fn set_size(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.expect("window resized");
        // The window's frame takes some of its size; grow it by what is missing.
        let inner = self.eval("return [innerWidth, innerHeight]", json!([])).await;
        let missing = |i: usize, want: u32| want.saturating_sub(inner[i].as_u64().unwrap_or(0) as u32);
        let (wider, taller) = (missing(0, width), missing(1, height));
        if wider > 0 || taller > 0 {
            self.client.set_window_size(width + wider, height + taller).await.expect("window resized");
        }
    }

    /// Opens a new tab (same profile: same cookies and local storage) and returns its handle.
    pub async fn open_tab(&self) -> WindowHandle {
        self.client.new_window(true).await.expect("a new tab").handle
    }

    /// The current tab's handle.
    pub async fn current_tab(&self) -> WindowHandle {
        self.client.window().await.expect("the current tab")
    }

    /// Makes `tab` the one later commands act on.
    pub async fn switch_to(&self, tab: &WindowHandle) {
        self.client.switch_to_window(tab.clone()).await.expect("switched tabs");
    }

    /// Saves a PNG screenshot of the window.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).unwrap();
    }

    /// Makes the page's `prefers-color-scheme` dark (or light), through Chromium's DevTools.
    pub async fn prefer_dark(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        let features = json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]});
        let command = DevTools { command: "Emulation.setEmulatedMedia", params: features };
        self.client.issue_cmd(command).await.expect("the color scheme is emulated");
    }

    /// Runs axe-core on the current page and returns its violations of
    /// impact "serious" or "critical" as `(rule id, impact, help, [targets])`.
    pub async fn serious_accessibility_violations(&self) -> Vec<Value> {
        self.eval(&format!("{AXE_SCRIPT}\n;return true;"), json!([])).await;
        let script = "const done = arguments[arguments.length - 1];\
             axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations\
               .filter(v => v.impact === 'serious' || v.impact === 'critical')\
               .map(v => [v.id, v.impact, v.help, v.nodes.map(n => n.target.join(' '))])))\
             .catch(e => done([['axe failed', String(e)]]));";
        let found = self.client.execute_async(script, vec![]).await.expect("axe-core runs");
        found.as_array().cloned().unwrap_or_default()
    }
}

/// A Chrome DevTools Protocol command, sent through chromedriver's
/// `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
struct DevTools {
    command: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"cmd": self.command, "params": self.params}).to_string()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its process group; Chromium and its helpers are in it.
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
        }
    }
}
