//! What the fake knows, behind one lock that no task holds across an await.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Fault, GoogleClaims, Recorded, Route, Tamper, directory, http, jose, objects};

pub struct Account {
    pub client_email: String,
    pub client_id: String,
    pub private_key_id: String,
    pub key: Arc<jose::SigningKey>,
}

pub struct OAuthClient {
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

/// What an access token stands for.
pub struct AccessToken {
    pub client_id: String,
    /// The Directory id of the user it acts as; `None`: the service account itself.
    pub user: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: u64,
}

pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: String,
    pub claims: GoogleClaims,
    /// As the token answer names them.
    pub scope: Vec<String>,
    pub issued_at: u64,
    pub redeemed: bool,
}

pub type PendingFault = http::PendingFault<Route, Fault>;

/// Everything the fake knows, behind one lock that no task holds across an await.
pub struct State {
    pub accounts: Vec<Account>,
    /// Which `client_key` the next service account takes.
    pub next_account_key: usize,
    /// Client id → delegated scopes.
    pub delegation: HashMap<String, Vec<String>>,
    pub clients: HashMap<String, OAuthClient>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub codes: HashMap<String, AuthCode>,
    pub signed_in: Option<GoogleClaims>,
    pub deny_next_login: Option<(String, String)>,
    pub last_authorize: Option<HashMap<String, String>>,
    pub tampers: Vec<Tamper>,
    /// Indexes into the process-wide key pool (`jose::signing_key`).
    pub signer: usize,
    pub published: Vec<usize>,
    pub next_key: usize,
    pub directory: objects::Directory,
    pub cursors: HashMap<String, directory::Cursor>,
    pub faults: Vec<PendingFault>,
    pub always: Vec<(Route, Fault)>,
    pub latency: Duration,
    pub requests: Vec<Recorded>,
    pub token_requests: usize,
    pub jwks_requests: usize,
}

impl State {
    pub fn new() -> State {
        State {
            accounts: Vec::new(),
            next_account_key: 0,
            delegation: HashMap::new(),
            clients: HashMap::new(),
            access_tokens: HashMap::new(),
            codes: HashMap::new(),
            signed_in: None,
            deny_next_login: None,
            last_authorize: None,
            tampers: Vec::new(),
            signer: 0,
            published: vec![0],
            next_key: 1,
            directory: objects::Directory::new(),
            cursors: HashMap::new(),
            faults: Vec::new(),
            always: Vec::new(),
            latency: Duration::ZERO,
            requests: Vec::new(),
            token_requests: 0,
            jwks_requests: 0,
        }
    }
}
