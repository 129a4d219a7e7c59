//! Bad input through the shared app scaffolding becomes problem+json with the request id.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::{test, web, App, HttpResponse};
use peermesh_common::http::{configure_extractors, JsonBody};
use peermesh_common::middleware::request_context;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NoteIn {
    title: String,
    stars: u8,
}

async fn create(_: JsonBody<NoteIn>) -> HttpResponse {
    HttpResponse::Created().finish()
}

async fn crash() -> Result<HttpResponse, peermesh_common::ApiError> {
    Err(peermesh_common::ApiError::internal(
        "connection string postgres://u:secret@db",
    ))
}

macro_rules! app {
    () => {
        test::init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(|req, next| {
                    request_context(
                        peermesh_common::logging::discard(),
                        peermesh_common::metrics::Metrics::new("test").unwrap(),
                        None,
                        req,
                        next,
                    )
                }))
                .configure(|cfg| configure_extractors(cfg, 64))
                .route("/notes", web::post().to(create))
                .route(
                    "/notes/{id}",
                    web::get().to(|p: web::Path<u32>| async move {
                        HttpResponse::Ok().body(p.into_inner().to_string())
                    }),
                )
                .route("/crash", web::get().to(crash)),
        )
        .await
    };
}

async fn problem<B: actix_web::body::MessageBody>(
    resp: actix_web::dev::ServiceResponse<B>,
) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let rid = resp
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["request_id"], rid);
    assert_eq!(body["status"], status);
    (status, body)
}

fn post(body: &str, content_type: &str) -> actix_web::test::TestRequest {
    test::TestRequest::post()
        .uri("/notes")
        .insert_header(("content-type", content_type))
        .set_payload(body.to_owned())
}

#[actix_web::test]
async fn json_errors_have_the_right_status() {
    let app = app!();
    let ok = test::call_service(
        &app,
        post(r#"{"title":"a","stars":3}"#, "application/json").to_request(),
    )
    .await;
    assert_eq!(ok.status(), 201);

    let (status, body) = problem(
        test::call_service(&app, post(r#"{"title":"#, "application/json").to_request()).await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json"))
    );

    let (status, body) = problem(
        test::call_service(
            &app,
            post(
                r#"{"title":"a","stars":3,"colour":"red"}"#,
                "application/json",
            )
            .to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed"))
    );
    assert_eq!(body["errors"][0]["field"], "colour");

    let (status, body) = problem(
        test::call_service(
            &app,
            post(r#"{"title":"a"}"#, "application/json").to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "stars");

    let (status, _) = problem(
        test::call_service(
            &app,
            post(r#"{"title":"a","stars":3}"#, "text/plain").to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 415);

    let long = format!(r#"{{"title":"{}","stars":3}}"#, "x".repeat(100));
    let (status, body) =
        problem(test::call_service(&app, post(&long, "application/json").to_request()).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
}

#[actix_web::test]
async fn routing_errors_and_internal_errors_are_problems() {
    let app = app!();
    let (status, _) = problem(
        test::call_service(&app, test::TestRequest::get().uri("/nowhere").to_request()).await,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = problem(
        test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/notes/not-a-number")
                .to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404, "an id that cannot exist is not found");
    let (status, body) = problem(
        test::call_service(&app, test::TestRequest::get().uri("/crash").to_request()).await,
    )
    .await;
    assert_eq!(status, 500);
    assert!(!body.to_string().contains("secret"), "{body}");
}
