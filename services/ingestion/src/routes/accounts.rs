//! `DELETE /ingest/accounts/{id}`: a deleted account's jobs, feeds and stored files go.
//! The auth service calls it (scope `accounts:delete`) until it answers 204; calling
//! it again is harmless.

use paperclip::actix::{api_v2_operation, web, NoContent};
use peermesh_common::auth::{ClosedAccounts, Principal};
use peermesh_common::ApiError;
use peermesh_db::closed_accounts;

use crate::store::accounts;
use crate::AppState;

/// Erases everything the account had here; its tokens are refused from now on.
#[api_v2_operation(
    summary = "Erase a deleted account's jobs, feeds and files",
    tags(accounts)
)]
pub async fn erase(
    state: web::Data<AppState>,
    closed: web::Data<ClosedAccounts>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let owner = closed_accounts::close_on_request(&state.db, &closed, &principal, &path).await?;
    let files = state
        .db
        .write(move |conn| accounts::erase(conn, &owner))
        .await?;
    for sha256 in files {
        let hash = sha256.clone();
        if !state
            .db
            .read(move |conn| accounts::file_in_use(conn, &hash))
            .await?
        {
            state
                .blobs
                .remove(&sha256)
                .await
                .map_err(ApiError::internal)?;
        }
    }
    Ok(NoContent)
}
