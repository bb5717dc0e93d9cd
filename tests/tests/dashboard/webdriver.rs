//! A small W3C WebDriver client over reqwest: starts `/usr/bin/chromedriver` on a free port and
//! one headless Chromium session with a fresh profile, and offers what the dashboard tests do in
//! a browser (go to a page, find, type, click, read text, take a screenshot). Every wait polls
//! with a deadline.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::harness::eventually;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a wait for a page or an element lasts.
pub const WAIT: Duration = Duration::from_secs(30);
/// W3C's key of an element reference in a JSON answer.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    driver_url: String,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` x `height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} and {CHROMEDRIVER} are needed (Debian's chromium and chromium-driver): \
             run scripts/install-deps"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let driver_url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut browser = Browser {
            http,
            driver_url,
            session: String::new(),
            driver,
            _profile: profile,
        };
        let status = format!("{}/status", browser.driver_url);
        eventually(WAIT, "chromedriver to become ready", || async {
            let response = browser.http.get(&status).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            (body["value"]["ready"] == true).then_some(())
        })
        .await;
        let profile = browser._profile.path().display().to_string();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={profile}"),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let created = browser.call("POST", "/session", Some(capabilities)).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; panics on a WebDriver error.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let answer = self.try_call(method, path, body).await;
        answer.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.driver_url);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let value: Value = response.json().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(value["value"].clone())
        } else {
            Err(format!("{status}: {}", value["value"]["message"]))
        }
    }

    fn at(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call("GET", &self.at("/url"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn try_find(&self, css: &str) -> Result<String, String> {
        let found = self
            .try_call(
                "POST",
                &self.at("/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        found[ELEMENT]
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("no element reference in {found}"))
    }

    async fn find_now(&self, css: &str) -> Option<String> {
        self.try_find(css).await.ok()
    }

    /// The element `css` selects, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let error = match self.try_find(css).await {
                Ok(element) => return element,
                Err(error) => error,
            };
            if Instant::now() >= deadline {
                let source = self.call("GET", &self.at("/source"), None).await;
                panic!(
                    "no element {css} on {}: {error}\n{source}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            "POST",
            &self.at(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call("POST", &self.at(&format!("/element/{element}/click")), None)
            .await;
    }

    /// The visible text of the element `css` selects (empty if it is not there).
    pub async fn text(&self, css: &str) -> String {
        let Some(element) = self.find_now(css).await else {
            return String::new();
        };
        self.try_call("GET", &self.at(&format!("/element/{element}/text")), None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    /// Waits until the page's text contains `wanted`; returns the text.
    pub async fn wait_for_text(&self, wanted: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text("body").await;
            if text.contains(wanted) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the page {} never showed {wanted:?}; it shows:\n{text}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the window under the tests' output folder and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call("GET", &self.at("/screenshot"), None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 PNG"))
            .expect("PNG bytes");
        let dir = output_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}

/// Where the tests save their screenshots.
pub fn output_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard")
}

impl Drop for Browser {
    /// Ends the session (so chromedriver closes Chromium), then stops chromedriver. A plain
    /// blocking request: `Drop` cannot await.
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let host = self.driver_url.trim_start_matches("http://").to_string();
            if let Ok(mut stream) = std::net::TcpStream::connect(&host) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let request = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session
                );
                if stream.write_all(request.as_bytes()).is_ok() {
                    let mut answer = Vec::new();
                    let _ = stream.read_to_end(&mut answer);
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
