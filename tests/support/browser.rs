//! Real headless Chromium through WebDriver (fantoccini + Debian's chromedriver).
//! Screenshots land in `target/screenshots/` so a person can look at them.

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

pub struct Browser {
    pub client: Client,
    _profile: tempfile::TempDir,
}

pub async fn open() -> Browser {
    let url = crate::support::servers::chromedriver()
        .fact("WEBDRIVER_URL")
        .to_owned();
    let profile = tempfile::tempdir().expect("profile dir");
    let args = serde_json::json!([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        format!("--user-data-dir={}", profile.path().display()),
    ]);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("start a Chromium session");
    Browser {
        client,
        _profile: profile,
    }
}

impl Browser {
    pub async fn screenshot(&self, name: &str) {
        let dir = crate::support::servers::target_dir().join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.expect(css);
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Clicks the element; one that htmx swapped between finding and clicking (a live
    /// page) is found again.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            let element = self.client.find(Locator::Css(css)).await.expect(css);
            match element.click().await {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        panic!("{css} kept being replaced");
    }

    pub async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .expect(css)
            .text()
            .await
            .expect("text")
    }

    /// Signs in at `base` (the app's address) as the first admin and waits for the dashboard.
    pub async fn sign_in_as_admin(&self, base: &str) {
        self.client
            .goto(&format!("{base}/login"))
            .await
            .expect("goto");
        self.fill("#username", "admin").await;
        self.fill("#password", crate::support::app::ADMIN_PASSWORD)
            .await;
        self.click("button[type=submit]").await;
        self.wait_for_text("h1", "Dashboard").await;
    }

    /// The TOTP secret the enrolment page shows (its key field), as bytes.
    pub async fn totp_key(&self) -> Vec<u8> {
        let text = self
            .client
            .find(Locator::Css("#totp-secret"))
            .await
            .expect("the key field")
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
            .replace(' ', "");
        totp_rs::Secret::try_from_base32(&text)
            .expect("base32")
            .as_bytes()
            .to_vec()
    }

    /// On the recovery-codes page: ticks "I have saved these codes" and continues.
    pub async fn codes_saved_continue(&self) {
        self.click("#codes-saved").await;
        self.click_button("Continue").await;
    }

    /// Clicks the link whose text is `text`.
    pub async fn click_link(&self, text: &str) {
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|_| panic!("link {text}"))
            .click()
            .await
            .expect("click");
    }

    /// Clicks the button whose text is `text`.
    pub async fn click_button(&self, text: &str) {
        self.client
            .find(Locator::XPath(&format!(
                "//button[normalize-space(.)='{text}']"
            )))
            .await
            .unwrap_or_else(|_| panic!("button {text}"))
            .click()
            .await
            .expect("click");
    }

    /// Waits (up to 10 s) until an element matching `css` contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = el.text().await
                && text.contains(needle)
            {
                return text;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "`{css}` never showed `{needle}`; page: {}",
                    self.client.source().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

impl Browser {
    /// The form control a `<label>` names: its `for` target, or the input inside it.
    pub async fn field(&self, label: &str) -> fantoccini::elements::Element {
        let xpath = format!("//label[normalize-space(text())='{label}']");
        let found = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|_| panic!("no label `{label}`"));
        match found.attr("for").await.expect("for") {
            Some(id) => self
                .client
                .find(Locator::Id(&id))
                .await
                .unwrap_or_else(|_| panic!("label `{label}` points at a missing #{id}")),
            None => found
                .find(Locator::Css("input"))
                .await
                .unwrap_or_else(|_| panic!("label `{label}` holds no input")),
        }
    }

    /// Types into the field a label names (after clearing it).
    pub async fn fill_labelled(&self, label: &str, text: &str) {
        let field = self.field(label).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn value_of(&self, label: &str) -> String {
        self.field(label)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }
}

/// The axe-core build `tests/run` installs (`tests/support/axe`, pinned in its lockfile).
fn axe_source() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing ({}: {e}). Install it with `(cd tests/support/axe && npm ci)`, as tests/run does.",
            path.display()
        )
    })
}

impl Browser {
    /// Sets the size of the page's viewport (the headless window has no other chrome).
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
    }

    /// Runs axe-core on the page as it is now; the serious and critical violations, each
    /// as `rule (impact): help — the first elements`.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        self.client
            .execute(&axe_source(), vec![])
            .await
            .expect("inject axe-core");
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] })
              .then((r) => done(r.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`)))
              .catch((e) => done([`axe failed: ${e}`]));
        "#;
        let found = self
            .client
            .execute_async(script, vec![])
            .await
            .expect("run axe-core");
        serde_json::from_value(found).expect("violations")
    }

    /// The outermost elements reaching past the viewport's right edge, as `tag.class`.
    pub async fn too_wide(&self) -> Vec<String> {
        let script = r#"
            const w = window.innerWidth;
            const wide = [...document.querySelectorAll("body *")]
              .filter((e) => e.getBoundingClientRect().right > w + 1 || e.scrollWidth > w + 1)
              .filter((e) => !e.parentElement.closest(".table-scroll"));
            return wide.filter((e) => !wide.includes(e.parentElement)).slice(0, 5)
              .map((e) => `${e.tagName.toLowerCase()}.${e.className} in ${e.parentElement.tagName.toLowerCase()}.${e.parentElement.className} “${e.textContent.trim().slice(0, 30)}” (${Math.round(e.getBoundingClientRect().right)} px)`);
        "#;
        let v = self.client.execute(script, vec![]).await.expect("too wide");
        serde_json::from_value(v).unwrap_or_default()
    }

    /// How wide the page is against the viewport: (scrollWidth, innerWidth).
    pub async fn widths(&self) -> (u64, u64) {
        let v = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .expect("widths");
        let n = |i: usize| v.get(i).and_then(|x| x.as_u64()).unwrap_or(0);
        (n(0), n(1))
    }
}
