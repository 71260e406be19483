//! A GitLab project's raw file endpoint (`GET /api/v4/projects/{id}/repository/files/{path}/raw`),
//! where GitLab's managed-content project serves the sync's overrides file. A private or
//! internal project serves it only with a token, in `PRIVATE-TOKEN` or `Authorization: Bearer`,
//! as GitLab's API documents: without one GitLab answers `404 Project Not Found` (so as not to
//! tell that the project exists), with a wrong one `401 Unauthorized`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// A file of a project, and the token its project asks for (`None`: a public project).
#[derive(Clone, Debug, PartialEq)]
pub struct GitlabFile {
    /// The project's id or URL-encoded path (`gitlab-com%2Fsupport%2Fmanaged-content`).
    pub project: String,
    /// The file's path in the repository (`overrides.yaml`).
    pub path: String,
    pub content: String,
    pub token: Option<String>,
}

impl GitlabFile {
    /// Its raw URL below the sandbox's `{base}/gitlab`.
    pub fn url(&self, base_url: &str) -> String {
        format!(
            "{base_url}/gitlab/api/v4/projects/{}/repository/files/{}/raw?ref=main",
            self.project,
            percent_encoding::utf8_percent_encode(&self.path, percent_encoding::NON_ALPHANUMERIC)
        )
    }
}

pub(crate) fn router(files: Arc<Vec<GitlabFile>>) -> Router {
    Router::new()
        .route(
            "/api/v4/projects/{project}/repository/files/{path}/raw",
            get(raw_file),
        )
        .with_state(files)
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({"message": text}))).into_response()
}

async fn raw_file(
    State(files): State<Arc<Vec<GitlabFile>>>,
    Path((project, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(file) = files
        .iter()
        .find(|f| f.project == project || decoded(&f.project) == decoded(&project))
    else {
        return message(StatusCode::NOT_FOUND, "404 Project Not Found");
    };
    if let Some(wanted) = &file.token {
        let given = headers
            .get("private-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_owned)
            });
        match given {
            None => return message(StatusCode::NOT_FOUND, "404 Project Not Found"),
            Some(token) if token.trim() != wanted => {
                return message(StatusCode::UNAUTHORIZED, "401 Unauthorized");
            }
            Some(_) => {}
        }
    }
    if decoded(&file.path) != decoded(&path) {
        return message(StatusCode::NOT_FOUND, "404 File Not Found");
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        file.content.clone(),
    )
        .into_response()
}

fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
