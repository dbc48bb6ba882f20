//! A small W3C WebDriver client for headless Chromium through chromedriver
//! (Debian packages `chromium` and `chromium-driver`, installed by
//! tests/run.sh): start a browser, open pages, find elements, type, click,
//! read text, run a script, take a screenshot.

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// The WebDriver key for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Upper bound for waiting on something in a page.
const PAGE_WAIT: Duration = Duration::from_secs(15);

/// A headless Chromium session; the driver and every browser process it
/// started die with it (the whole process group is killed on drop).
pub struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium profile.
    pub async fn start() -> Self {
        let driver_bin = std::env::var("GORP_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        assert!(
            Path::new(&driver_bin).exists(),
            "{driver_bin} is missing: run tests/run.sh (it installs chromium-driver)"
        );
        let port = free_port();
        let driver = tokio::process::Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            // Its own process group, so the browsers it starts end with it (see Drop).
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        wait_until_ready(&http, &root).await;
        let profile = tempfile::tempdir().unwrap();
        let args = [
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
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium_binary(), "args": args}
        }}});
        let created: Value =
            http.post(format!("{root}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let session =
            created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_owned();
        Self { http, base: format!("{root}/session/{session}"), _driver: driver, _profile: profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let request = self.http.request(method, format!("{}{path}", self.base));
        let request = if body.is_null() { request } else { request.json(&body) };
        let reply: Value = request.send().await.expect("webdriver answers").json().await.expect("webdriver JSON");
        if let Some(error) = reply["value"].get("error") {
            panic!("webdriver {path}: {error}: {}", reply["value"]["message"]);
        }
        reply["value"].clone()
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its result.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": args})).await
    }

    /// The visible text of the page body.
    pub async fn body_text(&self) -> String {
        self.eval("return document.body ? document.body.innerText : ''", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let found = self.call(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_owned()
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

    async fn wait_until(&self, what: &str, script: &str, args: Value) {
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
        let element = self.find(css).await;
        let text = text.replace('\n', "\u{E007}");
        self.call(reqwest::Method::POST, &format!("/element/{element}/value"), json!({"text": text})).await;
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), json!({})).await;
    }

    /// Saves a PNG screenshot of the window.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn chromium_binary() -> String {
    std::env::var("GORP_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

async fn wait_until_ready(http: &reqwest::Client, root: &str) {
    for _ in 0..200 {
        if let Ok(reply) = http.get(format!("{root}/status")).send().await
            && let Ok(status) = reply.json::<Value>().await
            && status["value"]["ready"] == Value::Bool(true)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not become ready");
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leads its process group; Chromium and its helpers are in it.
        if let Some(pid) = self._driver.id() {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
        }
    }
}
