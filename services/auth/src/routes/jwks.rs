//! `GET /.well-known/jwks.json`: the public keys other services verify tokens with.

use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use serde::Serialize;

use crate::AppState;

#[derive(Serialize, Apiv2Schema)]
pub struct JwksOut {
    /// RFC 7517 JSON Web Keys.
    pub keys: Vec<serde_json::Value>,
}

#[api_v2_operation(summary = "Public signing keys (JWKS)", tags(keys))]
pub async fn jwks(state: web::Data<AppState>) -> web::Json<JwksOut> {
    let keys = state
        .keys
        .jwks()
        .keys
        .iter()
        .filter_map(|k| serde_json::to_value(k).ok())
        .collect();
    web::Json(JwksOut { keys })
}
