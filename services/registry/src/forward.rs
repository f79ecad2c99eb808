//! Middleware sending every write request to the elected writer, as
//! Confluent's followers forward to their leader.
//!
//! Guarantees:
//! - **Writes reach the writer**: a write (`POST /subjects/{subject}/versions`,
//!   every `PUT` and `DELETE`) on an instance that is not the writer is sent to
//!   the announced writer's URL with its method, path, query, body and the
//!   client's `Authorization`, `Content-Type` and `Accept` headers, and the
//!   writer's answer is passed back (status, body, content type). Reads are
//!   always answered locally.
//! - **Read-your-writes on the instance that answered**: the writer tags each
//!   write's answer with its reader's offset ([`OFFSET_HEADER`]); the
//!   forwarding instance answers only once its own reader has reached it.
//! - **No loops**: a forwarded request carries [`FORWARDED_HEADER`]; an
//!   instance that receives one and is not the writer answers 503 instead of
//!   forwarding again.
//! - **Rides out a writer's death**: when the announced writer cannot be
//!   connected to, the request (not sent, so safe to repeat) waits for the
//!   next writer and goes there, or is handled here if this instance was
//!   elected meanwhile.
//! - **5xx that clients retry**: while no writer is known (after waiting
//!   [`WAIT_FOR_WRITER`] for an election), or when the writer cannot be
//!   reached, the answer is a 503 with `Retry-After`.

use std::time::Duration;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpResponse};
use anyhow::Context;

use crate::errors::ApiError;
use crate::kafka_store::{KafkaStore, WriteRoute};

/// Marks a request one instance forwarded to another.
pub const FORWARDED_HEADER: &str = "x-mamochi-registry-forwarded";
/// The writer's reader offset after a write, for the forwarding instance to wait on.
pub const OFFSET_HEADER: &str = "x-mamochi-registry-offset";
/// How long a write waits for a writer to be elected before answering 503: a
/// registry that just started joins the election within a few seconds.
pub const WAIT_FOR_WRITER: Duration = Duration::from_secs(15);
/// A forwarded write may wait for the writer's own 30 s store timeout.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(40);
/// Connecting to a live writer takes milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The HTTP client writes are forwarded with.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: reqwest::Client,
}

impl Forwarder {
    pub fn new() -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            // A writer whose host is gone (not just its process) is given up
            // on soon, so the request can wait for the next writer instead.
            .connect_timeout(CONNECT_TIMEOUT)
            // The writer's answer is passed back as it is, redirects included.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("while creating the forwarding HTTP client")?;
        Ok(Self { client })
    }
}

/// Whether the request changes state (and so must be handled by the writer).
fn is_write(request: &ServiceRequest) -> bool {
    match *request.method() {
        Method::PUT | Method::DELETE => request.match_pattern().is_some(),
        // `POST /subjects/{subject}` (lookup) and `/compatibility/...` only read.
        Method::POST => request.match_pattern().as_deref() == Some("/subjects/{subject}/versions"),
        _ => false,
    }
}

/// Middleware (`from_fn`): handles writes here when this instance is the
/// writer, else forwards them (see the module doc).
pub async fn forward_writes(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let store = request.app_data::<web::Data<KafkaStore>>().cloned();
    let forwarder = request.app_data::<web::Data<Forwarder>>().cloned();
    let (Some(store), Some(forwarder)) = (store, forwarder) else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    if !is_write(&request) {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let forwarded = request.headers().contains_key(FORWARDED_HEADER);
    let wait = if forwarded { Duration::ZERO } else { WAIT_FOR_WRITER };
    match store.route_write(wait, None).await {
        WriteRoute::Here => Ok(handle_here(&store, next, request).await?.map_into_left_body()),
        WriteRoute::Forward(_) if forwarded => Ok(request.error_response(ApiError::NoWriter).map_into_right_body()),
        WriteRoute::NoWriter => Ok(request.error_response(ApiError::NoWriter).map_into_right_body()),
        WriteRoute::Forward(url) => {
            let (http_request, mut payload) = request.into_parts();
            let body = web::Bytes::from_request(&http_request, &mut payload).await?;
            let response = match forward_until_answered(&forwarder, &store, url, &http_request, body.clone()).await {
                Ok(Some(response)) => response,
                // This instance was elected while the request waited.
                Ok(None) => {
                    let request = ServiceRequest::from_parts(http_request, Payload::from(body));
                    return Ok(handle_here(&store, next, request).await?.map_into_left_body());
                }
                Err(error) => actix_web::ResponseError::error_response(&error),
            };
            Ok(ServiceResponse::new(http_request, response).map_into_right_body())
        }
    }
}

/// Handles a write on this instance, the writer, and tags the answer with
/// the reader's position: the write (if any) is applied here by now, and a
/// forwarding instance waits until its own reader has come as far.
async fn handle_here<B: MessageBody>(
    store: &KafkaStore,
    next: Next<B>,
    request: ServiceRequest,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let offset = header::HeaderValue::from(store.applied_offset());
    response.headers_mut().insert(header::HeaderName::from_static(OFFSET_HEADER), offset);
    Ok(response)
}

/// Forwards to `url`; when the writer there cannot even be connected to (it
/// stopped or died, so the request was not sent), waits for the next writer
/// and forwards there, within [`WAIT_FOR_WRITER`] in all. `None` when this
/// instance became the writer meanwhile.
async fn forward_until_answered(
    forwarder: &Forwarder,
    store: &KafkaStore,
    mut url: String,
    request: &actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<Option<HttpResponse>, ApiError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_WRITER;
    loop {
        match forward(forwarder, store, &url, request, body.clone()).await {
            Err(Unsent(error)) => {
                let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                match store.route_write(wait, Some(&url)).await {
                    WriteRoute::Forward(next) => url = next,
                    WriteRoute::Here => return Ok(None),
                    // None came in time: the client retries.
                    WriteRoute::NoWriter => return Err(ApiError::Forwarding(error)),
                }
            }
            Ok(answer) => return answer.map(Some),
        }
    }
}

/// A request that never reached the writer (so it is safe to send again).
struct Unsent(anyhow::Error);

/// Sends the request to the writer at `url`, waits for this instance to have
/// applied the write, and returns the writer's answer.
async fn forward(
    forwarder: &Forwarder,
    store: &KafkaStore,
    url: &str,
    request: &actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<Result<HttpResponse, ApiError>, Unsent> {
    let path = request.uri().path_and_query().map_or("/", |path| path.as_str());
    let target = format!("{}{path}", url.trim_end_matches('/'));
    let method = match reqwest::Method::from_bytes(request.method().as_str().as_bytes()) {
        Ok(method) => method,
        Err(error) => return Ok(Err(ApiError::Forwarding(error.into()))),
    };
    let mut outgoing = forwarder.client.request(method, &target).header(FORWARDED_HEADER, "1").body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = request.headers().get(&name) {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(error) => {
            let connect = error.is_connect();
            let error =
                anyhow::Error::new(error).context(format!("while forwarding {} {path} to {url}", request.method()));
            return if connect { Err(Unsent(error)) } else { Ok(Err(ApiError::Forwarding(error))) };
        }
    };
    Ok(passed_back(store, url, answer).await)
}

/// The writer's answer as this instance's, once this instance has applied the write.
async fn passed_back(store: &KafkaStore, url: &str, answer: reqwest::Response) -> Result<HttpResponse, ApiError> {
    let text_header = |name: &str| answer.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_string);
    let offset = text_header(OFFSET_HEADER).and_then(|offset| offset.parse::<i64>().ok());
    let content_type = text_header(header::CONTENT_TYPE.as_str());
    let passed_on: Vec<(&str, String)> = [header::RETRY_AFTER, header::WWW_AUTHENTICATE, header::ALLOW]
        .iter()
        .filter_map(|name| text_header(name.as_str()).map(|value| (name.as_str(), value)))
        .collect();
    let status = StatusCode::from_u16(answer.status().as_u16()).map_err(|error| ApiError::Forwarding(error.into()))?;
    let body = answer
        .bytes()
        .await
        .with_context(|| format!("while reading the writer's answer from {url}"))
        .map_err(ApiError::Forwarding)?;
    if let Some(offset) = offset {
        store.wait_until_applied_offset(offset).await?;
    }
    let mut response = HttpResponse::build(status);
    if let Some(content_type) = content_type {
        response.content_type(content_type);
    }
    for (name, value) in passed_on {
        response.insert_header((name, value));
    }
    Ok(response.body(body.to_vec()))
}
