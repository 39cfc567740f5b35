//! The OpenAPI document: served, complete, and the committed `openapi.yaml` is fresh.

use reqwest::StatusCode;
use vmcp_store::testing::TestDatabase;

use crate::support::TestApp;

#[test]
fn the_committed_openapi_yaml_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = vmcp_http::openapi_yaml();
    assert!(
        committed == current,
        "openapi.yaml is stale: run `cargo xtask openapi` and commit the result"
    );
}

#[test]
fn every_operation_documents_its_responses() {
    let api = serde_json::to_value(vmcp_http::openapi()).unwrap();
    let paths = api["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/vmcps/{vmcp_id}/export"));
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                !responses.is_empty(),
                "{method} {path} documents no response"
            );
            for (status, r) in responses {
                let d = r["description"].as_str().unwrap_or("");
                assert!(!d.is_empty(), "{method} {path} {status} has no description");
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status} must use the error body"
                    );
                }
            }
        }
    }
    assert!(operations >= 13, "{operations}");
    assert_eq!(api["info"]["license"]["name"], "MIT");
}

#[actix_web::test]
async fn the_document_and_swagger_ui_are_served() {
    let app = TestApp::start(TestDatabase::sqlite()).await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, serde_json::to_value(vmcp_http::openapi()).unwrap());
    let r = app.get("/openapi.yaml").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_str().unwrap(), vmcp_http::openapi_yaml());
    let r = app.get("/docs/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.as_str().unwrap().contains("swagger-ui"),
        "the UI page is served"
    );
    let r = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the UI's script is served locally, not from a CDN"
    );
    app.stop().await;
}
