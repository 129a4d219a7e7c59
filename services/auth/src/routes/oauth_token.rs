//! `POST /token`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) for other
//! modules. Errors carry RFC 6749 §5.2's `error`/`error_description` as
//! `application/json`, beside the usual problem members.

use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;
use base64::Engine as _;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::ApiError;
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use super::NoStore;
use crate::metrics::Grant;
use crate::store::clients;
use crate::tokens::secret_hash;
use crate::AppState;

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ClientTokenOut {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// The scopes granted, space separated.
    pub scope: String,
}

/// An RFC 6749 §5.2 error.
fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> ApiError {
    ApiError::new(status, error, description.to_owned())
        .with_extension("error", error)
        .with_extension("error_description", description)
        .with_content_type("application/json")
        .with_header(header::CACHE_CONTROL, "no-store")
}

fn invalid_request(description: &str) -> ApiError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client(basic: bool) -> ApiError {
    let err = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    );
    if basic {
        err.with_header(header::WWW_AUTHENTICATE, "Basic realm=\"peermesh\"")
    } else {
        err
    }
}

/// `client_id:client_secret` from HTTP Basic (each form-urlencoded, RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| invalid_client(true))?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(invalid_client(true));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client(true));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_client(true))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| invalid_client(true))?;
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
    };
    match (unescape(id), unescape(secret)) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        _ => Err(invalid_client(true)),
    }
}

/// Issues an access token to a service client (`grant_type=client_credentials`).
#[api_v2_operation(summary = "Client-credentials token (RFC 6749 §4.4)", tags(clients))]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<NoStore<ClientTokenOut, 200>, ApiError> {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(invalid_request(
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|_| invalid_request("malformed form body"))?;
    let get = |name: &str| -> Result<Option<String>, ApiError> {
        let mut values = params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid_request(&format!("{name} is given more than once")));
        }
        Ok(first.filter(|v| !v.is_empty()))
    };
    let grant_type = get("grant_type")?;
    let body_id = get("client_id")?;
    let body_secret = get("client_secret")?;
    let scope = get("scope")?;

    match grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            ))
        }
        None => return Err(invalid_request("grant_type is required")),
    }
    let basic = basic_credentials(&req)?;
    let used_basic = basic.is_some();
    let (client_id, secret) = match (basic, body_id, body_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some(creds), None, None) => creds,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => return Err(invalid_client(false)),
    };

    let lookup = client_id.clone();
    let client = state
        .db
        .run(move |conn| clients::active_by_id(conn, &lookup))
        .await
        .map_err(ApiError::from)?;
    let presented = secret_hash(&secret);
    let Some(client) =
        client.filter(|c| bool::from(c.secret_hash.as_bytes().ct_eq(presented.as_bytes())))
    else {
        return Err(invalid_client(used_basic));
    };

    let allowed = client.scope_list();
    let granted: Vec<String> = match scope {
        None => allowed.clone(),
        Some(requested) => {
            let requested: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
            if requested.is_empty() || requested.iter().any(|s| !allowed.contains(s)) {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "the requested scope exceeds what this client may have",
                ));
            }
            requested
        }
    };
    let scope = granted.join(" ");
    let access_token = state
        .issuer
        .sign(
            client.id.clone(),
            vec!["service".into()],
            scope.clone(),
            None,
        )
        .await
        .map_err(ApiError::internal)?;
    state.metrics.issued(Grant::ClientCredentials);
    Ok(NoStore(ClientTokenOut {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.issuer.access_ttl_secs(),
        scope,
    }))
}
