//! Google's error bodies for the Directory API (and the OIDC JSON endpoints): the
//! `{"error": {"code", "message", "errors": [{message, domain, reason, …}], "status"}}`
//! shape, with the messages and reasons the Admin SDK uses for each refusal.

use serde_json::{Value, json};

use super::server::Reply;

/// `{"error": {"code", "message", "errors": [item], "status"?}}`.
pub fn api_error(code: u16, message: &str, item: Value, status: Option<&str>) -> Reply {
    let mut error = json!({"code": code, "message": message, "errors": [item]});
    if let Some(status) = status {
        error["status"] = json!(status);
    }
    Reply::json(code, &json!({ "error": error }))
}

pub fn global(code: u16, message: &str, reason: &str) -> Reply {
    let item = json!({"message": message, "domain": "global", "reason": reason});
    api_error(code, message, item, None)
}

pub fn bad_request() -> Reply {
    global(400, "Bad Request", "badRequest")
}

pub fn invalid_input() -> Reply {
    global(400, "Invalid Input", "invalid")
}

pub fn invalid_parameter(name: &str, message: &str) -> Reply {
    let item = json!({
        "message": message, "domain": "global", "reason": "invalidParameter",
        "location": name, "locationType": "parameter",
    });
    api_error(400, message, item, None)
}

pub fn not_found(what: &str) -> Reply {
    global(404, &format!("Resource Not Found: {what}"), "notFound")
}

pub fn forbidden() -> Reply {
    global(
        403,
        "Not Authorized to access this resource/api",
        "forbidden",
    )
}

/// What the fake does not implement is refused, never silently ignored.
pub fn unsupported(what: &str) -> Reply {
    global(
        400,
        &format!("The Google fake does not implement {what}."),
        "invalid",
    )
}

/// The canonical status name Google's newer error bodies carry for an HTTP code.
pub fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// A test's `Fault::Error`.
pub fn fault_error(status: u16, reason: &str, message: &str) -> Reply {
    let item = json!({"message": message, "domain": "global", "reason": reason});
    api_error(status, message, item, Some(status_name(status)))
}

/// Google's usage-limit answers: 403 `userRateLimitExceeded` / `quotaExceeded`, 429
/// `rateLimitExceeded`.
pub fn rate_limited(status: u16, reason: &str) -> Reply {
    let limit = match reason {
        "userRateLimitExceeded" => "Queries per minute per user",
        "quotaExceeded" => "Queries per day",
        _ => "Queries per minute",
    };
    let message = format!(
        "Quota exceeded for quota metric 'Queries' and limit '{limit}' of service \
         'admin.googleapis.com' for consumer 'project_number:123456789012'."
    );
    let item = json!({"message": message, "domain": "usageLimits", "reason": reason});
    api_error(status, &message, item, Some(status_name(status)))
}

// ---- the caller's credentials ----

const CREDENTIALS: &str = "Expected OAuth 2 access token, login cookie or other valid \
     authentication credential. See \
     https://developers.google.com/identity/sign-in/web/devconsole-project.";
const REALM: &str = r#"Bearer realm="https://accounts.google.com/""#;

fn unauthenticated(message: &str, item_message: &str, reason: &str, challenge: &str) -> Reply {
    let item = json!({
        "message": item_message,
        "domain": "global",
        "reason": reason,
        "location": "Authorization",
        "locationType": "header",
    });
    api_error(401, message, item, Some("UNAUTHENTICATED")).header("www-authenticate", challenge)
}

/// No `Authorization` header at all.
pub fn login_required() -> Reply {
    let message = format!("Request is missing required authentication credential. {CREDENTIALS}");
    unauthenticated(&message, "Login Required.", "required", REALM)
}

/// A token Google never issued, or one that expired.
pub fn invalid_credentials() -> Reply {
    let message = format!("Request had invalid authentication credentials. {CREDENTIALS}");
    let challenge = format!(r#"{REALM}, error="invalid_token""#);
    unauthenticated(&message, "Invalid Credentials", "authError", &challenge)
}

/// A token without any of the scopes that `method` accepts.
pub fn insufficient_scopes(method: &str, accepted: &[&str]) -> Reply {
    let body = json!({"error": {
        "code": 403,
        "message": "Request had insufficient authentication scopes.",
        "errors": [{
            "message": "Insufficient Permission",
            "domain": "global",
            "reason": "insufficientPermissions",
        }],
        "status": "PERMISSION_DENIED",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            "domain": "googleapis.com",
            "metadata": {
                "service": "admin.googleapis.com",
                "method": format!("ccc.hosted.frontend.directory.v1.{method}"),
            },
        }],
    }});
    let challenge = format!(
        r#"{REALM}, error="insufficient_scope", scope="{}""#,
        accepted.join(" ")
    );
    Reply::json(403, &body).header("www-authenticate", &challenge)
}
