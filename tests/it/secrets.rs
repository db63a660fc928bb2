//! Secrets at rest: sealed with a fresh nonce, never stored in clear, rotated atomically.

use roster::crypto::MasterKey;
use roster::secrets::{self, SecretError};
use secrecy::{ExposeSecret, SecretString};

const CANARY: &str = "bind-password-canary-4c1f";

crate::db_test! {
    async fn secrets_are_sealed_with_fresh_nonces_and_open_only_with_their_key(app) {
        let key = app.master_key.clone();
        let (a, b, rows) = app
            .conn(move |c| {
                let a = secrets::store(c, &key, "profile 1 bind password", &SecretString::from(CANARY)).expect("store");
                let b = secrets::store(c, &key, "profile 2 bind password", &SecretString::from(CANARY)).expect("store");
                (a, b, roster::db::models::secrets::all(c).expect("rows"))
            })
            .await;
        assert_ne!(rows[0].sealed, rows[1].sealed, "same plaintext, different ciphertext");
        assert!(rows.iter().all(|r| !r.sealed.contains(CANARY) && !r.purpose.contains(CANARY)));

        let key = app.master_key.clone();
        let other = MasterKey::generate();
        app.conn(move |c| {
            assert_eq!(secrets::reveal(c, &key, a).expect("reveal").expose_secret(), CANARY);
            secrets::replace(c, &key, b, &SecretString::from("new value")).expect("replace");
            assert_eq!(secrets::reveal(c, &key, b).expect("reveal").expose_secret(), "new value");
            assert!(matches!(secrets::reveal(c, &other, a), Err(SecretError::OtherKey { .. })));
            assert!(matches!(secrets::reveal(c, &key, 999_999), Err(SecretError::Missing(_))));
        })
        .await;
    }
}

crate::db_test! {
    async fn rotation_reseals_everything_and_the_old_key_stops_working(app) {
        let old = app.master_key.clone();
        let new = MasterKey::generate();
        let (ids, count) = {
            let (old, new) = (old.clone(), new.clone());
            app.conn(move |c| {
                let ids: Vec<i64> = (0..3)
                    .map(|i| secrets::store(c, &old, "test", &SecretString::from(format!("{CANARY}-{i}"))).expect("store"))
                    .collect();
                (ids, secrets::rotate(c, &old, &new).expect("rotate"))
            })
            .await
        };
        assert_eq!(count, 3);
        let (o, n) = (old.clone(), new.clone());
        app.conn(move |c| {
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(secrets::reveal(c, &n, *id).expect("new key").expose_secret(), format!("{CANARY}-{i}"));
                assert!(secrets::reveal(c, &o, *id).is_err(), "old key must not open it");
            }
        })
        .await;

        // Start-up now demands the new key.
        let mut settings = crate::support::app::test_settings(crate::support::app::Backend::Sqlite, app.dir.path());
        settings.database_url = SecretString::from(app.database_url.clone());
        settings.master_key = Some(old.to_base64());
        let err = roster::state::AppState::open(settings.clone()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("wrong master key") && err.contains(new.id()), "{err}");
        settings.master_key = Some(new.to_base64());
        roster::state::AppState::open(settings).expect("the new key opens the database");

        // A failed rotation changes nothing: a wrong "old" key cannot open the secrets.
        let stranger = MasterKey::generate();
        let newest = MasterKey::generate();
        let (s2, n2) = (stranger.clone(), newest.clone());
        let result = app.conn(move |c| secrets::rotate(c, &s2, &n2).map(|_| ())).await;
        assert!(result.is_err());
        let active = app
            .conn(|c| roster::db::models::master_keys::active(c).expect("active").expect("a key").key_id)
            .await;
        assert_eq!(active, new.id(), "the failed rotation was rolled back");
    }
}
