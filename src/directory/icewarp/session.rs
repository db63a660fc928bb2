//! An IceWarp session that is always closed: by `close`, or — dropped open by a cancelled
//! run or a failed answer — by a task of its own.

use super::xml;

/// An open session, logged out by `close` — or, when dropped open (a cancelled run), by a
/// task of its own.
pub(super) struct Session {
    pub(super) sid: String,
    pub(super) client: reqwest::Client,
    pub(super) url: String,
    pub(super) open: bool,
}

impl Session {
    pub(super) async fn close(mut self) {
        self.open = false;
        logout(&self.client, &self.url, &self.sid).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, url, sid) = (self.client.clone(), self.url.clone(), self.sid.clone());
            runtime.spawn(async move { logout(&client, &url, &sid).await });
        }
    }
}

async fn logout(client: &reqwest::Client, url: &str, sid: &str) {
    let Ok(body) = xml::request(Some(sid), "logout", &[]) else {
        return;
    };
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "text/xml")
        .body(body)
        .send()
        .await;
    if let Err(e) = sent {
        // Names the host, never the session.
        tracing::warn!(error = %crate::directory::rest::error_chain(&e.without_url()), "IceWarp logout failed");
    }
}
